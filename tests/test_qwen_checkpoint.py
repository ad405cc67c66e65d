"""A local Qwen2-VL checkpoint folder (issue 18's naming): its stock processor needs torchvision for
video, so lv.load pairs the checkpoint's tokenizer and image processor in
`models.qwen2_vl.ImageOnlyProcessor` (formerly `TinyProcessor`, a name that hid that real checkpoints
take this path), and the session traces an image prompt with it."""

import torch

import lvsal_nb as lv
from lvsal_nb.models import tiny
from lvsal_nb.models.qwen2_vl import ImageOnlyProcessor


def test_local_qwen_checkpoint_loads_with_the_image_only_processor(tmp_path, image):
    model, proc = tiny.tiny_qwen2_vl(dtype=torch.float32)
    model.save_pretrained(tmp_path)
    proc.tokenizer.save_pretrained(tmp_path)
    proc.image_processor.save_pretrained(tmp_path)
    s = lv.load(str(tmp_path), device="cpu")
    assert isinstance(s.processor, ImageOnlyProcessor)
    assert type(s.processor.image_processor).__name__ == type(proc.image_processor).__name__
    tr = s.trace(image, "describe this image .", max_new_tokens=3)
    # the same model and processor objects in memory give the same trace
    ref = lv.load(model, proc, device="cpu").trace(image, "describe this image .", max_new_tokens=3)
    assert tr.spans == ref.spans and tr.spans.image is not None
    assert tr.token_ids == ref.token_ids
    assert [x.saliency for x in tr.records] == [x.saliency for x in ref.records]
