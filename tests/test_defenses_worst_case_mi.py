"""worst_case_mi: the encoder never sees labels, the head never moves the encoder, the config is checked."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from bench.config import DefenseConfigError
from bench.defenses.worst_case_mi import build_worst_case_mi, train_encoder, train_head
from bench.registry import create_defense
from bench.validate import small_subset


@pytest.fixture()
def tiny(mnist5k):
    return small_subset(mnist5k, 96, 16, seed=0)


def _config(**overrides):
    return create_defense("worst_case_mi", epochs=1, steps=2, batch_size=48, head_epochs=1, **overrides).config


def test_encoder_training_ignores_labels_and_moves_the_encoder(tiny):
    config = _config()
    torch.manual_seed(0)
    first = build_worst_case_mi(tiny, config)
    second = build_worst_case_mi(tiny, config)
    second.load_state_dict(first.state_dict())
    before = {k: v.clone() for k, v in first.encoder.state_dict().items()}
    train_encoder(first, tiny, config)
    shuffled = dataclasses.replace(tiny, y_train=tiny.y_train[torch.randperm(len(tiny.y_train))])
    train_encoder(second, shuffled, config)
    for key, value in first.encoder.state_dict().items():
        assert torch.equal(value, second.encoder.state_dict()[key]), key
    assert any(not torch.equal(before[k], v) for k, v in first.encoder.state_dict().items())


def test_head_training_leaves_the_encoder_frozen(tiny):
    config = _config()
    torch.manual_seed(0)
    model = build_worst_case_mi(tiny, config)
    encoder = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    head = {k: v.clone() for k, v in model.head.state_dict().items()}
    train_head(model, tiny, config)
    assert all(torch.equal(encoder[k], v) for k, v in model.encoder.state_dict().items())
    assert any(not torch.equal(head[k], v) for k, v in model.head.state_dict().items())
    x = tiny.x_test[:4]
    assert torch.equal(model(x), model.head(model.representation(x)))
    assert model.representation(x).shape == (4, config.z_dim)


def test_linear_head_and_bad_values(tiny):
    model = build_worst_case_mi(tiny, _config(head_hidden=0))
    assert isinstance(model.head, torch.nn.Linear)
    with pytest.raises(DefenseConfigError, match="bound.*one of dv, infonce"):
        create_defense("worst_case_mi", bound="jsd")
    with pytest.raises(DefenseConfigError, match="eps"):
        create_defense("worst_case_mi", eps=2.0)
