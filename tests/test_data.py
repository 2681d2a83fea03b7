"""Loaders, splits, standardization and file formats of steerage_ray.data (no Ray)."""

import pickle
import random
import socket
import struct

import numpy as np
import pytest
from PIL import Image

from steerage_ray.data import (DATASET_NAMES, dataset_source, from_arrays, load_csv,
                               load_dataset, load_dataset_spec, load_image_folder, load_npz)
from steerage_ray.data.specs import expand_paths
from steerage_ray.data.bundled import MNIST1D_CACHE

BUNDLED = ["digits", "wine", "breast_cancer", "iris", "digits_images"]


pytestmark = pytest.mark.usefixtures("one_blas_thread", "isolated_cache")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def assert_well_formed(dataset):
    for split in ("train", "val", "test"):
        X, y = getattr(dataset, f"X_{split}"), getattr(dataset, f"y_{split}")
        assert X.dtype == np.float32 and y.dtype == np.int64
        assert np.isfinite(X).all()
        assert y.min() >= 0 and y.max() < dataset.n_classes
    assert set(np.unique(dataset.y_train)) == set(range(dataset.n_classes))


# -- bundled datasets ------------------------------------------------------------------
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_dataset_is_split_60_20_20_and_typed(name):
    dataset = load_dataset(name)
    assert_well_formed(dataset)
    n = len(dataset.y_train) + len(dataset.y_val) + len(dataset.y_test)
    assert abs(len(dataset.y_val) - 0.2 * n) <= 1 and abs(len(dataset.y_test) - 0.2 * n) <= 1
    expected_kind = "image" if name == "digits_images" else "tabular"
    assert dataset.kind == expected_kind
    if name == "digits":
        assert dataset.input_shape == (64,) and dataset.n_classes == 10
    if name == "digits_images":
        assert dataset.input_shape == (1, 8, 8)


def test_digits_images_are_the_digits_rows_reshaped():
    tabular, images = load_dataset("digits", seed=3), load_dataset("digits_images", seed=3)
    np.testing.assert_array_equal(tabular.y_test, images.y_test)
    # per-feature vs per-channel scaling differ, but the ordering of raw pixels survives
    raw_order = np.argsort(tabular.X_test[:, 36], kind="stable")
    np.testing.assert_array_equal(raw_order, np.argsort(images.X_test[:, 0, 4, 4], kind="stable"))


def test_splits_are_stratified_deterministic_per_seed_and_disjoint():
    first, again, other = (load_dataset("digits", seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(first.X_train, again.X_train)
    np.testing.assert_array_equal(first.y_val, again.y_val)
    assert not np.array_equal(first.y_train, other.y_train)

    totals = sum(np.bincount(getattr(first, f"y_{s}"), minlength=10)
                 for s in ("train", "val", "test"))
    for split, share in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        counts = np.bincount(getattr(first, f"y_{split}"), minlength=10)
        assert np.all(np.abs(counts - share * totals) <= 1.5), (split, counts)

    ids = np.arange(500)
    X = np.stack([ids, np.random.default_rng(0).normal(size=500)], axis=1)
    dataset = from_arrays("ids", X, ids % 5, seed=7)
    # standardization is increasing per feature, so ranks of column 0 identify the rows
    all_ids = np.concatenate([getattr(dataset, f"X_{s}")[:, 0] for s in ("train", "val", "test")])
    assert len(np.unique(all_ids)) == 500


def test_standardization_uses_train_statistics_only():
    rng = np.random.default_rng(0)
    X_train = rng.normal(5.0, 3.0, size=(200, 4))
    X_train[:, 3] = 7.0  # constant feature: the zero-std guard must keep it finite
    X_val, X_test = rng.normal(5.0, 3.0, size=(50, 4)), rng.normal(50.0, 9.0, size=(50, 4))
    y = lambda n: np.arange(n) % 2  # noqa: E731
    dataset = from_arrays("t", X_train, y(200), X_val=X_val, y_val=y(50), X_test=X_test,
                          y_test=y(50))
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[3] = 1.0
    np.testing.assert_allclose(dataset.X_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(dataset.X_train[:, :3].std(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(dataset.X_test, (X_test - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dataset.X_val, (X_val - mean) / std, rtol=1e-5, atol=1e-5)

    shifted = from_arrays("t", X_train, y(200), X_val=X_val, y_val=y(50),
                          X_test=X_test * 1000, y_test=y(50))
    np.testing.assert_array_equal(shifted.X_train, dataset.X_train)


def test_images_are_standardized_per_channel():
    rng = np.random.default_rng(1)
    X = rng.normal(0, 1, size=(120, 3, 6, 6)) * np.array([1, 10, 100])[:, None, None] + 40
    dataset = from_arrays("rgb", X, np.arange(120) % 3)
    np.testing.assert_allclose(dataset.X_train.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(dataset.X_train.std(axis=(0, 2, 3)), 1, atol=1e-4)


def test_arbitrary_labels_are_remapped_to_codes():
    X = np.random.default_rng(0).normal(size=(60, 3))
    dataset = from_arrays("labels", X, np.repeat(["cat", "ant", "bee"], 20))
    assert dataset.n_classes == 3 and dataset.meta["classes"] == ["ant", "bee", "cat"]
    numeric = from_arrays("labels", X, np.repeat([10, -4, 7], 20))
    assert numeric.meta["classes"] == [-4, 7, 10]
    assert_well_formed(numeric)


@pytest.mark.slow  # generates MNIST-1D: seconds
def test_mnist1d_is_generated_offline_cached_and_keeps_global_rng(no_network, isolated_cache):
    MNIST1D_CACHE.clear_memory()
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)
    misses = MNIST1D_CACHE.stats.misses
    dataset = load_dataset("mnist1d", seed=0)
    assert MNIST1D_CACHE.stats.misses == misses + 1
    assert (np.random.random(), random.random()) == (expected_np, expected_py)
    assert (len(dataset.y_train), len(dataset.y_val), len(dataset.y_test)) == (3200, 800, 1000)
    assert dataset.input_shape == (40,) and dataset.n_classes == 10
    assert_well_formed(dataset)
    assert len(list((isolated_cache / "mnist1d").glob("*.npz"))) == 1

    MNIST1D_CACHE.clear_memory()
    disk_hits = MNIST1D_CACHE.stats.disk_hits
    again = load_dataset("mnist1d", seed=0)
    assert MNIST1D_CACHE.stats.disk_hits == disk_hits + 1
    assert MNIST1D_CACHE.stats.misses == misses + 1
    np.testing.assert_array_equal(again.X_test, dataset.X_test)


# -- bad input -------------------------------------------------------------------------
def test_unknown_dataset_name_lists_valid_names():
    with pytest.raises(ValueError, match="name 'mnits' is unknown.*digits"):
        load_dataset("mnits")
    assert set(DATASET_NAMES) == {"digits", "digits_images", "wine", "breast_cancer", "iris",
                                  "mnist1d", "mnist", "fashion_mnist", "cifar10"}


def test_unknown_option_and_bad_fraction_are_rejected():
    with pytest.raises(ValueError, match="test_fraction.*accepted options"):
        load_dataset("mnist1d", test_fraction=0.1)
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("iris", val_fraction=1.5)
    with pytest.raises(ValueError, match="generator_args"):
        load_dataset("mnist1d", generator_args={"num_sample": 10})


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_torchvision_data_says_pass_root_or_download(name, tmp_path):
    with pytest.raises(ValueError, match="root=.*download=True"):
        load_dataset(name, root=tmp_path / "empty")
    with pytest.raises(ValueError, match="root=.*download=True"):
        load_dataset(name)  # default root under the (empty) cache dir


# -- torchvision formats, written offline ----------------------------------------------
def write_idx(path, array):
    """An idx-ubyte file as distributed by LeCun (big-endian dims, uint8 data)."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def tiny_images(n, shape, seed):
    """Labels 0-9 (n/10 each); pixel [..., 0, 0] encodes the label so order can be checked."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(10), n // 10)
    images = rng.integers(0, 200, size=(n,) + shape).astype(np.uint8)
    images.reshape(n, -1, *shape[-2:])[:, :, 0, 0] = labels[:, None] * 20
    return images, labels


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_format_loads_through_torchvision_offline(name, folder, tmp_path, no_network):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n, seed in (("train", 60, 0), ("t10k", 20, 1)):
        images, labels = tiny_images(n, (28, 28), seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)

    dataset = load_dataset(name, root=tmp_path, seed=0)
    assert (len(dataset.y_train), len(dataset.y_val), len(dataset.y_test)) == (50, 10, 20)
    assert dataset.input_shape == (1, 28, 28) and dataset.kind == "image"
    assert_well_formed(dataset)
    assert dataset.meta["source"] == f"torchvision.datasets.{folder}"
    for split in ("train", "val", "test"):  # label-encoding pixel rises with the label
        X, y = getattr(dataset, f"X_{split}"), getattr(dataset, f"y_{split}")
        order = np.argsort(y, kind="stable")
        assert np.all(np.diff(X[order, 0, 0, 0]) >= 0)
        assert np.all(np.diff(X[order, 0, 0, 0])[np.diff(y[order]) > 0] > 0)


def test_cifar10_batches_load_offline_and_md5_is_verified(tmp_path, no_network):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for seed, filename in enumerate(names):
        images, labels = tiny_images(20 if filename != "test_batch" else 10, (3, 32, 32), seed)
        with open(folder / filename, "wb") as file:
            pickle.dump({"data": images.reshape(len(images), -1), "labels": labels.tolist()}, file)

    with pytest.raises(ValueError, match="verify.*md5"):
        load_dataset("cifar10", root=tmp_path)
    dataset = load_dataset("cifar10", root=tmp_path, verify=False)
    assert (len(dataset.y_train), len(dataset.y_val), len(dataset.y_test)) == (90, 10, 10)
    assert dataset.input_shape == (3, 32, 32)
    assert_well_formed(dataset)
    order = np.argsort(dataset.y_test, kind="stable")
    assert np.all(np.diff(dataset.X_test[order, 0, 0, 0]) > 0)


# -- files -----------------------------------------------------------------------------
def test_load_csv_with_string_labels_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["a,b,species"] + [f"{rng.normal():.4f},{rng.normal():.4f},{['x', 'y'][i % 2]}"
                               for i in range(40)]
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines))
    dataset = load_csv(path, "species", seed=1)
    assert dataset.name == "table" and dataset.input_shape == (2,)
    assert dataset.meta["classes"] == ["x", "y"] and dataset.meta["feature_names"] == ["a", "b"]
    assert_well_formed(dataset)
    with pytest.raises(ValueError, match=r"label_column 'label'.*\['a', 'b', 'species'\]"):
        load_csv(path, "label")
    with pytest.raises(ValueError, match="path.*missing.csv"):
        load_csv(tmp_path / "missing.csv", "species")


def test_load_npz_accepts_documented_keys(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 5)), np.arange(100) % 4
    np.savez(tmp_path / "all.npz", X=X, y=y)
    dataset = load_npz(tmp_path / "all.npz")
    assert (len(dataset.y_train), len(dataset.y_val), len(dataset.y_test)) == (60, 20, 20)

    np.savez(tmp_path / "split.npz", x_train=X[:80], y_train=y[:80], x_test=X[80:], y_test=y[80:])
    split = load_npz(tmp_path / "split.npz", val_fraction=0.25)
    assert (len(split.y_train), len(split.y_val), len(split.y_test)) == (60, 20, 20)

    np.savez(tmp_path / "images.npz", X=rng.normal(size=(40, 7, 7)), y=np.arange(40) % 2)
    assert load_npz(tmp_path / "images.npz").input_shape == (1, 7, 7)

    np.savez(tmp_path / "bad.npz", features=X, labels=y)
    with pytest.raises(ValueError, match=r"keys \['features', 'labels'\].*expected X and y"):
        load_npz(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="path.*nope.npz"):
        load_npz(tmp_path / "nope.npz")


def test_load_image_folder_reads_class_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("cat", "dog", "eel"):
        (tmp_path / label).mkdir()
        for i in range(5):
            pixels = rng.integers(0, 255, size=(12, 10, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")

    rgb = load_image_folder(tmp_path)
    assert rgb.input_shape == (3, 12, 10) and rgb.n_classes == 3
    assert rgb.meta["classes"] == ["cat", "dog", "eel"]
    assert len(rgb.y_train) + len(rgb.y_val) + len(rgb.y_test) == 15
    gray = load_image_folder(tmp_path, image_size=6, grayscale=True)
    assert gray.input_shape == (1, 6, 6)
    assert_well_formed(gray)

    Image.fromarray(np.zeros((5, 5, 3), dtype=np.uint8)).save(tmp_path / "eel" / "small.png")
    with pytest.raises(ValueError, match="different sizes.*image_size="):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="path.*no such directory"):
        load_image_folder(tmp_path / "nothing")


# -- dataset specs -----------------------------------------------------------------------
def test_dataset_specs_are_loaded_once_per_process_and_validated():
    assert load_dataset_spec("digits") is load_dataset_spec({"name": "digits"})
    assert load_dataset_spec({"name": "digits", "seed": 2}) is not load_dataset_spec("digits")
    with pytest.raises(ValueError, match="exactly one of"):
        load_dataset_spec({"seed": 1})
    with pytest.raises(ValueError, match="exactly one of"):
        load_dataset_spec({"name": "digits", "csv": "x.csv"})
    with pytest.raises(ValueError, match="dataset name"):
        load_dataset_spec("no-such-data")


def test_a_spec_names_its_source_and_its_paths_expand(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert dataset_source({"csv": "a.csv", "label_column": "y"}) == "csv"
    assert dataset_source({"name": "mnist", "root": "~/data"}) == "name"
    spec = expand_paths({"name": "mnist", "root": "~/data", "seed": 1})
    assert spec == {"name": "mnist", "root": str(tmp_path / "data"), "seed": 1}
    assert expand_paths({"npz": "~/x.npz"}) == {"npz": str(tmp_path / "x.npz")}

