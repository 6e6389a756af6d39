"""Packaging: every third-party import is a declared dependency, and the configs ship with the package and are
found by name (``vasot-train --config ikea_asm`` from a pip install)."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest

from vasot_dist.config import ConfigError, find_config, load_config, packaged_configs
from vasot_dist.config.loader import PACKAGED_CONFIGS

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(*extras: str) -> set[str]:
    reqs = list(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        reqs += PYPROJECT["project"]["optional-dependencies"][extra]
    return {_norm(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in reqs}


def _third_party_imports(folders: list[Path]) -> dict[str, str]:
    """``{top-level module: a file importing it}`` outside the standard library, the project and the tests' and
    benchmarks' own helper modules (a ``<name>.py`` or a package ``<name>/`` beside the importing file or in a
    folder above it within ``folder``: pytest puts the conftest folders on the path)."""
    out: dict[str, str] = {}
    for folder in folders:
        for f in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    local = any((d / f"{top}.py").exists() or (d / top / "__init__.py").exists()
                                for d in (f.parent, *f.parent.parents) if d.is_relative_to(folder))
                    if top not in sys.stdlib_module_names and top not in ("vasot_dist", "vasot_pipelines") and not local:
                        out.setdefault(top, str(f.relative_to(ROOT)))
    return out


@pytest.mark.parametrize("folders,extras", [
    (["vasot_dist", "pipelines/vasot_pipelines", "launchers"], ()),
    (["tests", "benchmarks"], ("dev",)),
])
def test_every_import_is_a_declared_dependency(folders, extras):
    dists = md.packages_distributions()
    declared = _declared(*extras)
    missing = []
    for module, where in sorted(_third_party_imports([ROOT / f for f in folders]).items()):
        provided_by = {_norm(d) for d in dists.get(module, [])}
        if not provided_by & declared:
            missing.append(f"{module} (imported in {where}; distribution {sorted(provided_by) or 'unknown'})")
    assert not missing, "imports not declared in pyproject.toml:\n" + "\n".join(missing)


def test_the_package_data_covers_every_config():
    link = ROOT / "vasot_dist" / "configs"
    assert link.is_symlink() and link.resolve() == (ROOT / "configs").resolve() == PACKAGED_CONFIGS.resolve()
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["vasot_dist"]
    shipped = {p for pattern in patterns for p in (ROOT / "vasot_dist").glob(pattern)}
    on_disk = {ROOT / "vasot_dist" / "configs" / p.relative_to(ROOT / "configs") for p in (ROOT / "configs").rglob("*")
               if p.is_file()}
    assert on_disk == shipped and len(on_disk) > 10


def test_configs_and_sweeps_are_found_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repository: only the packaged copies can answer
    assert load_config("ikea_asm").data.name == "ikea_asm"
    assert load_config("demo.yaml").data.name == "synthetic"
    assert find_config("demo_asot", "sweeps") == (ROOT / "configs" / "sweeps" / "demo_asot.yaml").resolve()
    assert {"base", "demo", "ikea_asm", "alignment_base"} <= set(packaged_configs())
    with pytest.raises(ConfigError, match=r"^config file not found: ikea_asn \(nor a packaged config of that name; "
                                          r"packaged: 50salads_eval, .*ikea_asm"):
        load_config("ikea_asn")


def test_a_users_config_extends_a_packaged_base(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("extends: alignment_base.yaml\ndata:\n  shards: data/mine\n")
    cfg = load_config("mine.yaml")
    assert cfg.data.shards == "data/mine" and cfg.data.modality == "video" and cfg.method.name == "vasot"
    (tmp_path / "local_base.yaml").write_text("extends: base.yaml\noptim:\n  lr: 0.5\n")
    (tmp_path / "top.yaml").write_text("extends: local_base.yaml\n")  # a file beside it wins over a name
    assert load_config("top.yaml").optim.lr == 0.5
