"""The offline toy world: synthetic scenes with exact ground truth and a tiny trained LLaVA.

    from lvsal_nb.toy.model import load_toy, build_inputs
    from lvsal_nb.toy.scenes import make_scene, render, caption, pope_questions

scenes.py   the world (shapes in partner pairs), rendering, template captions, object words
pope.py     POPE question building from ground-truth object lists
tokenizer.py, inputs.py, model.py   the model's tokenizer, chat layout and loading
data.py, train.py                   on-the-fly training data and the CPU training run
metrics.py  toy CHAIR / POPE of a model on held-out scenes
worlds.py   the worlds: v1 (template captions) and v2 (long lists + recap, `lvsal_nb.load("toy-v2")`)
recap.py, labels.py, copycheck.py, signals.py, drops.py, demo_table.py   v2's captions, the exact
            error type of each object word, the copy check, per-word signals, the demo's table
"""
