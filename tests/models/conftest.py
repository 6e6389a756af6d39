"""Model tests never touch the network nor a real torch hub cache."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_hub(tmp_path_factory, monkeypatch):
    hub = tmp_path_factory.mktemp("hub")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))

    def _no_network(*args, **kwargs):
        raise AssertionError("a model test tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_network)
    return hub
