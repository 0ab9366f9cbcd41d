"""The benchmark's two ways of rendering phase II agree, and the reference's way leaves G untouched."""

import pytest
import torch

from inv_hyper.bench import batched, main, peak_growth, per_sample_copies
from inv_hyper.hypernetwork import Hypernetwork


def test_batched_offsets_and_per_sample_copies_agree(generator):
    hyper = Hypernetwork.for_generator(generator, input_dim=8, hidden_dim=4, extractor_dim=4).eval()
    torch.manual_seed(0)
    codes = torch.randn(3, hyper.num_maps, 8, 8, 8)
    with torch.no_grad():
        deltas = hyper(codes, codes.roll(1, 0))
        ws = generator.mapping(torch.randn(3, generator.z_dim))
    before = [t.clone() for t in generator.state_dict().values()]
    ours, growth = peak_growth(lambda: batched(generator, ws, deltas))
    theirs = per_sample_copies(generator, ws, deltas)
    assert growth >= 0
    # per-sample weights (grouped convolutions) against per-sample copies: other kernels. Each is within 13 eps * max
    # of a float64 run (this CPU; AVX2- and SSE-capped kernels), so they differ by < 26; 64x leaves 2.5x
    torch.testing.assert_close(
        ours, theirs, rtol=0, atol=64 * torch.finfo(torch.float32).eps * theirs.abs().max().item()
    )
    assert (ours - batched(generator, ws, {})).abs().max() > 1e-3
    assert all(torch.equal(a, b) for a, b in zip(before, generator.state_dict().values()))


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--repeats", "0"])
    assert exit_info.value.code == 2 and "must be positive" in capsys.readouterr().err
