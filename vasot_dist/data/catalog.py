"""The datasets vasot_dist has adapters and configs for: where each comes from and the one command that turns
it into shards. The missing-data error of every command reads it (``data.name`` -> the entry), and
``docs/datasets.md`` shows the same table (``tests/data/test_catalog.py`` checks that they agree, and that every
adapter of ``vasot-shard --list-adapters`` and every dataset config has an entry).

Nothing here is downloaded: the datasets' terms differ and several need a form or a request to the authors.
"""

from __future__ import annotations

from dataclasses import dataclass

# The folder a user is told to pass as --root: the dataset as its source publishes it.
_ROOT = "/path/to/{folder}"


@dataclass(frozen=True)
class DatasetSource:
    """One dataset: ``name`` is ``data.name`` in its config (``configs/<config>.yaml``) and the adapter name."""

    name: str
    title: str
    source: str  # the page to get it from (videos, annotations or features)
    licence: str  # as the source page states it
    adapter: str  # vasot-shard --adapter
    config: str  # the shipped config that trains it (configs/<config>.yaml)
    folder: str  # what the source calls its top folder (the --root placeholder)
    shard_args: str = "--workers 8 --verify"  # what follows --out

    def shard_command(self, out: str | None = None) -> str:
        """The ``vasot-shard`` line that writes this dataset's shards into ``out`` (default ``data/<name>``, the
        config's ``data.shards``)."""
        root = _ROOT.format(folder=self.folder)
        return (f"vasot-shard --adapter {self.adapter} --root {root} --out {out or 'data/' + self.name} "
                f"{self.shard_args}")


_VIDEO = "--workers 8 --verify"
# Frame folders carry no rate: --fps names it (every frame is kept at any value).
_FRAMES = "--fps 30 --workers 8 --verify"

DATASETS: dict[str, DatasetSource] = {d.name: d for d in (
    DatasetSource("ikea_asm", "IKEA ASM", "https://ikeaasm.github.io/",
                  "code MIT; the data's terms are on the source page", "ikea_asm", "ikea_asm", "IKEA_ASM",
                  "--fps 25 --workers 8 --verify"),
    DatasetSource("pouring", "Pouring (TCC)", "https://sites.google.com/view/temporal-cycle-consistency/home",
                  "terms on the source page", "pouring", "pouring", "pouring", _FRAMES),
    DatasetSource("penn_action", "Penn Action", "https://dreamdragon.github.io/PennAction/",
                  "terms on the source page (cite Zhang et al., ICCV 2013)", "penn_action", "penn_action",
                  "Penn_Action", _FRAMES),
    DatasetSource("coin", "COIN", "https://coin-dataset.github.io/",
                  "research use only (videos are YouTube's)", "coin", "coin", "COIN", _VIDEO),
    DatasetSource("crosstask", "CrossTask", "https://github.com/DmZhukov/CrossTask",
                  "code BSD-3-Clause; videos are YouTube's", "crosstask", "crosstask", "CrossTask", _VIDEO),
    DatasetSource("egoprocel", "EgoProceL", "https://sid2697.github.io/egoprocel/",
                  "annotations from the source page; videos under each source dataset's terms (CMU-MMAC, "
                  "EGTEA Gaze+, MECCANO, EPIC-Tents)", "egoprocel", "egoprocel", "EgoProceL", _VIDEO),
    DatasetSource("procel", "ProceL", "https://www.khoury.northeastern.edu/home/eelhami/procel.htm",
                  "terms on the source page (csv annotations: the EgoProceL repository)", "procel", "procel",
                  "ProceL", _VIDEO),
    DatasetSource("breakfast", "Breakfast features", "https://github.com/Annusha/unsup_temp_embed/blob/master/HOWTO_master.md",
                  "features: terms on the source page; videos: serre-lab.clps.brown.edu",
                  "breakfast", "breakfast", "Breakfast", _VIDEO),
    DatasetSource("yti", "YouTube Instructions features",
                  "https://github.com/Annusha/unsup_temp_embed/blob/master/HOWTO_master.md",
                  "videos are YouTube's; features: terms on the source page", "yti", "yti", "YTI", _VIDEO),
    DatasetSource("50salads_mid", "50 Salads features, mid-level",
                  "https://github.com/Annusha/unsup_temp_embed/blob/master/HOWTO_master.md",
                  "CC BY-NC-SA 4.0 (cvip.computing.dundee.ac.uk)", "50salads_mid", "50salads_mid", "FS", _VIDEO),
    DatasetSource("50salads_eval", "50 Salads features, eval-level",
                  "https://github.com/Annusha/unsup_temp_embed/blob/master/HOWTO_master.md",
                  "CC BY-NC-SA 4.0 (cvip.computing.dundee.ac.uk)", "50salads_eval", "50salads_eval", "FS",
                  _VIDEO),
    DatasetSource("desktop_assembly", "Desktop Assembly features",
                  "https://drive.google.com/drive/folders/1m7ljnnnd5kJ_Hi4Ir-sdNZRDFSqT1sHd",
                  "terms on the source page (the link of ASOT's README)", "desktop_assembly", "desktop_assembly",
                  "desktop_assembly", _VIDEO),
)}


def missing_data_hint(name: str, shards: str) -> str:
    """What to do when the shards of ``data.name=name`` are missing at ``shards``: the dataset's source page and
    the exact ``vasot-shard`` line, or, for a name the catalogue does not know, where the docs say how."""
    entry = DATASETS.get(name)
    if entry is None:
        return (f"data.name={name!r} is not one of the datasets of docs/datasets.md: write its shards with "
                "vasot-shard (vasot-shard --list-adapters, or a manifest: pipelines/README.md)")
    return (f"{entry.title} is not downloaded by vasot_dist: get it from {entry.source} "
            f"({entry.licence}), then make its shards with\n  {entry.shard_command(shards)}\n"
            "(all datasets: docs/datasets.md)")
