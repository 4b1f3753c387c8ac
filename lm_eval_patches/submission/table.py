"""The datasets of a MERA Multi submission (MERA_SPEC section 11.2): the file each one is packed
into, the lm-eval task(s) whose samples logs fill it, and the hub dataset holding its test ids."""

from __future__ import annotations

from dataclasses import dataclass

HUB_ORG = "MERA-evaluation"
LOGS_ZIP = "logs_public.zip"


@dataclass(frozen=True)
class SubmissionDataset:
    """One file of the archive.

    ``parts``: tasks concatenated into the file, in order (the science sets' per-domain subtasks).
    ``variants``: alternatives for a one-task file, in order of preference; exactly one is packed
    (ruTiE: the official dialogue ``_gen`` variant wins over ``_default`` when a run has both).
    """

    file: str
    hub_name: str
    public: bool
    parts: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The dataset's name as the site shows it: the file name without ``.json``."""
        return self.file.removesuffix(".json")

    @property
    def hub_path(self) -> str:
        """``MERA-evaluation/<Name>`` (the mirror layout under ``MERA_DATA_DIR`` too)."""
        return f"{HUB_ORG}/{self.hub_name}"

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every task name that may feed this file."""
        return self.parts or self.variants


def _one(file: str, hub_name: str, public: bool, task: str) -> SubmissionDataset:
    return SubmissionDataset(file, hub_name, public, variants=(task,))


def _science(
    file: str, hub_name: str, public: bool, prefix: str, configs: str
) -> SubmissionDataset:
    return SubmissionDataset(
        file, hub_name, public, parts=tuple(f"{prefix}_{c}" for c in configs.split())
    )


# The original's 18 file names (case matters on the site), each with its source tasks.
SUBMISSION_DATASETS: tuple[SubmissionDataset, ...] = (
    _one("AQUARIA.json", "AQUARIA", False, "aquaria"),
    _one("CommonVideoQA.json", "CommonVideoQA", True, "commonvideoqa"),
    _one("LabTabVQA.json", "LabTabVQA", False, "labtabvqa"),
    _one("RealVideoQA.json", "RealVideoQA", False, "realvideoqa"),
    _one("RealVQA.json", "RealVQA", False, "realvqa"),
    _one("ruCLEVR.json", "ruCLEVR", True, "ruclevr"),
    _one("ruCommonVQA.json", "ruCommonVQA", True, "rucommonvqa"),
    _one("ruEnvAQA.json", "ruEnvAQA", True, "ruenvaqa"),
    _one("ruHHH_Image.json", "ruHHH-Image", False, "ruhhh_image"),
    _one("ruHHH_Video.json", "ruHHH-Video", False, "ruhhh_video"),
    _one("ruMathVQA.json", "ruMathVQA", False, "rumathvqa"),
    _science(
        "ruNaturalScienceVQA.json",
        "ruNaturalScienceVQA",
        True,
        "runaturalsciencevqa",
        "biology chemistry physics earth_science",
    ),
    _one("ruSLUn.json", "ruSLUn", True, "ruslun"),
    SubmissionDataset(
        "ruTiE_Audio.json",
        "ruTiE-Audio",
        False,
        variants=("rutie_audio_gen", "rutie_audio_default"),
    ),
    SubmissionDataset(
        "ruTiE_Image.json",
        "ruTiE-Image",
        False,
        variants=("rutie_vision_gen", "rutie_vision_default"),
    ),
    _science(
        "SchoolScienceVQA.json",
        "SchoolScienceVQA",
        False,
        "schoolsciencevqa",
        "biology chemistry physics earth_science history_all history_ru economics",
    ),
    _science(
        "UniScienceVQA.json",
        "UniScienceVQA",
        False,
        "unisciencevqa",
        "applied_sciences business cultural_studies fundamental_sciences social_sciences "
        "health_and_medicine",
    ),
    _one("WEIRD.json", "WEIRD", True, "weird"),
)

BY_FILE: dict[str, SubmissionDataset] = {d.file: d for d in SUBMISSION_DATASETS}
BY_TASK: dict[str, SubmissionDataset] = {t: d for d in SUBMISSION_DATASETS for t in d.tasks}
