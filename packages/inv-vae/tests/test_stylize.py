"""python -m inv_vae.stylize with the shipped demo encoder and style, and its refusals."""

import numpy as np
import pytest
import torch
from PIL import Image

from inv_vae.stylize import check_style, load_style, main, stylize
from sg2_core import Generator, create_method, demo, save_networks


def test_demo_default_writes_the_grids_and_keeps_what_exists(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--out", str(out)]) == 0
    grid = np.asarray(Image.open(out / "grid.png"))
    assert grid.shape == (3 * 32, 8 * 32)  # rows: input, source rendering, stylised; 8 demo test images
    pair = np.asarray(Image.open(out / "demo_test_0_stylized.png"))
    assert pair.shape == (32, 64)
    assert "one image took" in capsys.readouterr().out
    before = (out / "grid.png").read_bytes()
    assert main(["--out", str(out)]) == 2
    assert "grid.png exists (and 8 more); pass --overwrite" in capsys.readouterr().err
    assert (out / "grid.png").read_bytes() == before


def test_image_files_are_stylised_as_the_api_does(tmp_path):
    images = demo.load_test_images()[0][:2]
    paths = []
    for i, x in enumerate(images):
        paths.append(tmp_path / f"in{i}.png")
        Image.fromarray(((x[0] + 1) * 127.5).round().byte().numpy()).save(paths[-1])
    assert main([*map(str, paths), "--out", str(tmp_path / "out")]) == 0
    G = demo.load_generator()
    agile, style = create_method("agilegan", generator=G), load_style("edges", G)
    read = torch.from_numpy(np.asarray(Image.open(paths[0]), dtype=np.float32))[None, None] / 127.5 - 1
    source, stylised = stylize(agile, style, read)
    assert not torch.allclose(source, stylised, atol=1e-2)  # the style changed the rendering
    pair = np.asarray(Image.open(tmp_path / "out" / "in0_stylized.png")).astype(np.float32) / 127.5 - 1
    assert np.abs(pair[:, 32:] - stylised[0, 0].clamp(-1, 1).numpy()).max() <= 1 / 127.5 + 1e-6


def test_an_image_of_another_size_is_named(tmp_path, capsys):
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "small.png")
    assert main([str(tmp_path / "small.png"), "--out", str(tmp_path / "out")]) == 2
    assert "small.png is 28x28, the generator makes 32x32 images" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_style_generator_of_another_architecture_is_refused(tmp_path, capsys):
    G = demo.load_generator()
    other = Generator(G.config.replace(resolution=16))
    with pytest.raises(
        ValueError,
        match=r"another architecture than the encoder's generator: resolution 16 "
        r"\(encoder's generator: 32\)",
    ):
        check_style(other, G)
    path = save_networks(tmp_path / "style16.safetensors", {"generator": other})
    assert main(["--style", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "style16.safetensors has another architecture" in capsys.readouterr().err


def test_a_file_without_a_generator_and_a_missing_style_are_named(tmp_path, capsys):
    encoder_file = "agilegan_fmnist32.safetensors"
    from importlib.resources import files

    path = str(files("inv_vae").joinpath("assets", encoder_file))
    assert main(["--style", path, "--out", str(tmp_path / "a")]) == 2
    assert "holds no 'generator' (it has ['encoder'])" in capsys.readouterr().err
    assert main(["--style", "watercolour", "--out", str(tmp_path / "b")]) == 2
    assert "--style watercolour: no such file, and not a shipped style (edges)" in capsys.readouterr().err


def test_the_methods_showcase_is_the_stylised_rendering_on_the_demo(generator, tmp_path):
    G = demo.load_generator()
    images = demo.load_test_images()[0][:3]
    agile = create_method("agilegan", generator=G)
    rows = agile.showcase(agile(images))
    assert list(rows) == ["agilegan stylised (edges)"]
    _, stylised = stylize(agile, load_style("edges", G), images)
    assert torch.equal(rows["agilegan stylised (edges)"], stylised)
    assert create_method("agilegan", generator=G, style=False).showcase(agile(images)) == {}
    # another generator has no shipped style: no rows unless style= names one
    small = create_method("agilegan", generator=generator, allow_untrained=True, widths=(16, 32, 48, 64))
    inv = small(demo_like(generator))
    assert small.showcase(inv) == {}
    path = save_networks(tmp_path / "my_style.safetensors", {"generator": generator})
    styled = create_method(
        "agilegan", generator=generator, allow_untrained=True, widths=(16, 32, 48, 64), style=str(path)
    )
    rows = styled.showcase(inv)
    assert list(rows) == ["agilegan stylised (my_style)"]
    torch.testing.assert_close(rows["agilegan stylised (my_style)"], inv.render(), rtol=0, atol=1e-5)


def test_a_showcase_style_of_another_architecture_is_refused(generator):
    G = demo.load_generator()
    agile = create_method("agilegan", generator=G, style=generator)
    with pytest.raises(
        ValueError,
        match=r"another architecture than the encoder's generator: .*z_dim 32 "
        r"\(encoder's generator: 128\)",
    ):
        agile.showcase(agile(demo.load_test_images()[0][:1]))


def demo_like(generator):
    with torch.no_grad():
        return generator(
            torch.randn(2, generator.z_dim, generator=torch.Generator().manual_seed(0)), noise_mode="const"
        ).clamp(-1, 1)


@pytest.fixture(scope="module")
def two_path_style():
    """The shipped edges style split into 'clothes' / 'shoes' paths, the shoes path's 8 px block changed."""
    from inv_vae import AttributeGenerator

    G = demo.load_generator()
    ag = AttributeGenerator.from_generator(load_style("edges", G), ("clothes", "shoes"))
    with torch.no_grad():
        ag.paths[1]["b8"].conv1.weight.mul_(-1)
    return ag.eval()


def test_attribute_paths_are_predicted_by_the_fmnist_class_group(two_path_style, tmp_path, capsys):
    from inv_metrics.fmnist import load_fmnist_net
    from inv_vae.attributes import FMNIST_GROUPS, FMNISTGroupClassifier

    G = demo.load_generator()
    images, labels = demo.load_test_images()
    images, labels = images[:8], labels[:8]
    shoes = torch.tensor([int(c) in FMNIST_GROUPS["shoes"] for c in labels])
    assert 0 < shoes.sum() < 8  # both groups among the first 8 demo test images
    predicted = FMNISTGroupClassifier(("clothes", "shoes"))(images)
    logits = load_fmnist_net()(images)
    p = logits.softmax(1)
    expected = ["shoes" if p[i, [5, 7, 9]].sum() > p[i, [0, 1, 2, 3, 4, 6]].sum() else "clothes" for i in range(8)]
    assert predicted == expected
    bags = labels == 8  # no bags path here: a bag takes the more probable of the two
    assert predicted[2] == "shoes" and bags[2]
    assert [x for x, b in zip(predicted, bags) if not b] == ["shoes" if s else "clothes" for s in shoes[~bags]]
    all_images, all_labels = demo.load_test_images()
    truth = [next(g for g, members in FMNIST_GROUPS.items() if int(c) in members) for c in all_labels]
    right = sum(a == b for a, b in zip(FMNISTGroupClassifier()(all_images), truth))
    assert right == 253  # of the 256 demo test images (98.8 %), the three groups

    agile = create_method("agilegan", generator=G)
    inv = agile(images)
    _, auto = stylize(agile, two_path_style, images)
    for i, name in enumerate(predicted):
        single = inv[i].render(generator=two_path_style.path(name))[0]
        # a path's batch against one image: other kernels. Each render is within 49 eps * max|image| of a float64
        # run (this CPU; AVX2- and SSE-capped kernels), so they differ by < 98; 256x leaves 2.6x
        bound = 256 * torch.finfo(torch.float32).eps * single.abs().max().item()
        torch.testing.assert_close(auto[i], single, rtol=0, atol=bound)
    _, given = stylize(agile, two_path_style, images, attributes="shoes")
    torch.testing.assert_close(given, inv.render(generator=two_path_style.path("shoes")), rtol=0, atol=1e-5)
    assert (given[~shoes] - auto[~shoes]).abs().max() > 1e-2  # the clothes took the other path
    # a user's classifier: every image on the clothes path
    _, mine = stylize(agile, two_path_style, images, classifier=lambda x: ["clothes"] * len(x))
    torch.testing.assert_close(mine, inv.render(generator=two_path_style.path("clothes")), rtol=0, atol=1e-5)

    path = save_networks(tmp_path / "two.safetensors", {"generator": two_path_style})
    assert main(["--style", str(path), "--out", str(tmp_path / "out")]) == 0
    assert f"attribute paths: {', '.join(predicted)}" in capsys.readouterr().out
    pair = np.asarray(Image.open(tmp_path / "out" / "demo_test_0_stylized.png")).astype(np.float32) / 127.5 - 1
    assert np.abs(pair[:, 32:] - auto[0, 0].clamp(-1, 1).numpy()).max() <= 1 / 127.5 + 1e-6


def test_the_showcase_predicts_attribute_paths_from_the_inputs(two_path_style):
    from inv_vae.attributes import FMNIST_GROUPS

    G = demo.load_generator()
    images, labels = demo.load_test_images()
    shoes = torch.tensor([int(c) in FMNIST_GROUPS["shoes"] for c in labels])
    clothes = images[~shoes][:3]
    agile = create_method("agilegan", generator=G, style=two_path_style)
    inv = agile(clothes)
    rows = agile.showcase(inv, clothes)  # as stylize: the paths of the inputs
    _, stylised = stylize(agile, two_path_style, clothes)
    torch.testing.assert_close(rows["agilegan stylised (style)"], stylised, rtol=0, atol=0)
    # the paths follow the images handed in: shoe images put every sample on the shoes path
    on_shoes = agile.showcase(inv, images[shoes][:3])["agilegan stylised (style)"]
    torch.testing.assert_close(on_shoes, inv.render(generator=two_path_style.path("shoes")), rtol=0, atol=1e-5)
    assert (on_shoes - stylised).abs().max() > 1e-2


def test_unknown_attribute_names_are_refused(two_path_style, generator, tmp_path, capsys):
    from inv_vae import AttributeGenerator
    from inv_vae.attributes import FMNISTGroupClassifier

    G = demo.load_generator()
    agile = create_method("agilegan", generator=G)
    images = demo.load_test_images()[0][:2]
    with pytest.raises(
        ValueError,
        match=r"unknown attribute 'hats'; this generator's attributes are "
        r"\['clothes', 'shoes'\]",
    ):
        stylize(agile, two_path_style, images, attributes="hats")
    with pytest.raises(
        ValueError,
        match=r"unknown attribute name\(s\) \['female'\] for the Fashion-MNIST class "
        r"groups \(clothes, shoes, bags\)",
    ):
        FMNISTGroupClassifier(("female", "shoes"))
    odd = AttributeGenerator.from_generator(G, ("female", "male"))
    with pytest.raises(ValueError, match=r"unknown attribute name\(s\) \['female', 'male'\]"):
        stylize(agile, odd, images)
    with pytest.raises(ValueError, match="attributes were given but the style generator has no attribute paths"):
        stylize(agile, load_style("edges", G), images, attributes="shoes")
    path = save_networks(tmp_path / "two.safetensors", {"generator": two_path_style})
    assert main(["--style", str(path), "--attribute", "hats", "--out", str(tmp_path / "out")]) == 2
    assert "error: unknown attribute 'hats'; this generator's attributes are" in capsys.readouterr().err
    assert main(["--style", str(path), "--attribute", "shoes", "clothes", "--out", str(tmp_path / "out")]) == 2
    assert "one attribute per sample (8) or one for all, got 2" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # elsewhere there is no default classifier: the attribute is asked for
    other = AttributeGenerator.from_generator(generator, ("a", "b"))
    small = create_method("agilegan", generator=generator, allow_untrained=True, widths=(16, 16, 16, 16))
    with pytest.raises(
        ValueError,
        match=r"attribute paths \['a', 'b'\]: give the attribute of each image, or a "
        "classifier",
    ):
        stylize(small, other, demo_like(generator))
