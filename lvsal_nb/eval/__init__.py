"""Evaluation: CHAIR and POPE (the protocols of OPERA / VCD) and saliency as a hallucination detector.

- :mod:`~lvsal_nb.eval.scores`: the pure formulas (POPE answer parser and metrics, CHAIR counts).
- :mod:`~lvsal_nb.eval.chair`: :class:`Chair`, the caption parser and ground truth of Rohrbach et al. 2018.
- :mod:`~lvsal_nb.eval.pope`: POPE's random / popular / adversarial question sets from COCO annotations.
- :mod:`~lvsal_nb.eval.detect`: AUROC / AP of (negated) saliency against hallucination marks.
- :mod:`~lvsal_nb.eval.fixtures`: a small hand-labelled COCO-format set of photos shipped in PyPI wheels.
"""

from lvsal_nb.eval.chair import Chair, Mention
from lvsal_nb.eval.detect import auroc, average_precision, detector_table
from lvsal_nb.eval.fixtures import FIXTURE_CAPTIONS, FIXTURE_INSTANCES, load_fixture_image
from lvsal_nb.eval.pope import build_pope, load_questions, save_questions
from lvsal_nb.eval.pope import score as pope_score
from lvsal_nb.eval.scores import chair_scores, parse_yes_no, pope_scores

__all__ = [
    "Chair",
    "Mention",
    "auroc",
    "average_precision",
    "detector_table",
    "FIXTURE_CAPTIONS",
    "FIXTURE_INSTANCES",
    "load_fixture_image",
    "build_pope",
    "load_questions",
    "save_questions",
    "pope_score",
    "chair_scores",
    "parse_yes_no",
    "pope_scores",
]
