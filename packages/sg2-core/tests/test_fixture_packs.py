"""sg2_core.testing.fixture_packs: the flat float16 weight packs of the packages' test data round-trip exactly."""

import pytest
import torch
from torch import nn

from sg2_core.testing.fixture_packs import pack_state, squeeze, unpack_state, unsqueeze


@pytest.fixture
def state():
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Linear(4, 5)).half()
    return net.state_dict()


@pytest.mark.parametrize("compress", [True, False])
def test_a_state_dict_round_trips_in_any_dtype(state, compress):
    packed = pack_state(state, compress=compress)
    assert ("values_f16_lzma" in packed) == compress
    for dtype in (torch.float32, torch.float64):
        back = unpack_state(packed, dtype)
        assert back.keys() == state.keys()
        for k, v in state.items():
            want = v.to(dtype) if v.is_floating_point() else v
            assert back[k].dtype == want.dtype and torch.equal(back[k], want), k


def test_a_tensor_round_trips_through_lzma():
    t = torch.randn(2, 3, 4).half()
    packed = squeeze(t)
    assert packed.dtype == torch.uint8
    assert torch.equal(unsqueeze(packed, (2, 3, 4)), t.float())


def test_what_cannot_be_packed_is_named(state):
    with pytest.raises(ValueError, match="stores float16 weights"):
        pack_state({k: v.float() for k, v in state.items()})
    with pytest.raises(ValueError, match="only when they are zero"):
        pack_state({**state, "1.num_batches_tracked": torch.tensor(3)})
    packed = pack_state(state)
    with pytest.raises(ValueError, match="the packed values hold"):
        unpack_state({**packed, "shapes": packed["shapes"][:-1], "keys": packed["keys"][:-1]})
