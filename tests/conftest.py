"""Shared fixtures. `lab`: one private Postfix on loopback with the milter and the default pack, for the session."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Public sample messages and the regulation text live beside the checkout (../shared/), as in CI; MONRE_SHARED
# points elsewhere. They are read in place, never copied into the repository.
SHARED = Path(os.environ.get("MONRE_SHARED", REPO.parent / "shared")).resolve()
CORPUS = SHARED / "corpus"


def pytest_configure(config):
    if not (CORPUS / "SOURCES.md").exists():
        raise pytest.UsageError(
            f"the tests read public samples from {SHARED}/ (corpus/, regulation/), which is missing: put the "
            "shared/ folder beside the checkout, or set MONRE_SHARED=/path/to/shared")
sys.path.insert(0, str(REPO / "milter"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _have_postfix() -> bool:
    return shutil.which("postfix") is not None and os.geteuid() == 0


@pytest.fixture(scope="session")
def lab_factory():
    """Make extra labs (own pack, own settings); all are stopped at the end of the session."""
    from monre_milter.lab import Lab

    if not _have_postfix():
        pytest.fail("end-to-end tests need Postfix and root: run scripts/setup.sh first")
    made = []
    base = Path(tempfile.mkdtemp(prefix="monre-lab-"))
    os.chmod(base, 0o755)

    def make(name: str, **kw) -> Lab:
        lab = Lab(root=base / name, python=sys.executable, **kw)
        made.append(lab)
        return lab.start()

    yield make
    for lab in made:
        lab.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def lab(lab_factory):
    """The default pack (policies/monre.yaml) behind a real Postfix."""
    return lab_factory("default")


@pytest.fixture
def corpus() -> Path:
    return CORPUS
