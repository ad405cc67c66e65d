"""The offline toy world: synthetic scenes with exact ground truth and a tiny trained LLaVA.

    from lvsal_nb.toy.model import load_toy, build_inputs
    from lvsal_nb.toy.scenes import make_scene, render, caption, pope_questions

scenes.py   the world (shapes in partner pairs), rendering, template captions, object words
pope.py     POPE question building from ground-truth object lists
tokenizer.py, inputs.py, model.py   the model's tokenizer, chat layout and loading
data.py, train.py                   on-the-fly training data and the CPU training run
metrics.py  toy CHAIR / POPE of a model on held-out scenes
"""
