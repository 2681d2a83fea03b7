"""Dimensionality reduction, image downsampling, prepare_for_config and caching (no Ray)."""

import threading
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from steerage_ray.data import (DR_METHODS, IMAGE_FILTERS, ArrayCache, Dataset, default_cache,
                               downsample_images, prepare_for_config,
                               reduce_dimensions, reduced_dimension)


pytestmark = pytest.mark.usefixtures("one_blas_thread", "isolated_cache")


def synthetic_images(size=28, channels=1, n=20, seed=0):
    rng = np.random.default_rng(seed)
    split = lambda: rng.normal(size=(n, channels, size, size)).astype(np.float32)  # noqa: E731
    labels = lambda: np.arange(n, dtype=np.int64) % 2  # noqa: E731
    return Dataset("synthetic", split(), labels(), split(), labels(), split(), labels(),
                   n_classes=2, kind="image")


def splits(dataset):
    return [getattr(dataset, f"X_{s}") for s in ("train", "val", "test")]


# -- dimensionality reduction ------------------------------------------------------------
@pytest.mark.parametrize("ratio, k", [(2, 32), (5.0, 13)])
@pytest.mark.parametrize("method", range(1, 12))
def test_every_method_gives_k_finite_standardized_features(digits, method, ratio, k):
    reduced = reduce_dimensions(digits, method, ratio, seed=0, cache=False)
    assert reduced.kind == "tabular" and reduced.input_shape == (k,)
    for X, y in zip(splits(reduced), (digits.y_train, digits.y_val, digits.y_test)):
        assert X.dtype == np.float32 and len(X) == len(y) and np.isfinite(X).all()
    np.testing.assert_array_equal(reduced.y_test, digits.y_test)
    np.testing.assert_allclose(reduced.X_train.mean(axis=0), 0, atol=1e-4)
    stds = reduced.X_train.std(axis=0)
    assert np.all((np.abs(stds - 1) < 1e-3) | (stds == 0))
    assert reduced.meta["dr_method"] == method and reduced.meta["dr_k"] == k
    assert reduced.meta["dr_method_name"] == DR_METHODS[method - 1]


def test_methods_by_name_and_index_agree_and_are_seeded(digits):
    by_index = reduce_dimensions(digits, 4, 4, seed=3, cache=False)
    by_name = reduce_dimensions(digits, "rp_achlioptas", 4, seed=3, cache=False)
    np.testing.assert_array_equal(by_index.X_val, by_name.X_val)
    other_seed = reduce_dimensions(digits, 4, 4, seed=4, cache=False)
    assert not np.allclose(by_index.X_val, other_seed.X_val)
    from_float = reduce_dimensions(digits, 4.0, 4, seed=3, cache=False)  # Tune may send floats
    np.testing.assert_array_equal(from_float.X_val, by_index.X_val)


def test_gaussian_projections_coincide_after_restandardization(digits):
    scaled = reduce_dimensions(digits, 1, 2, seed=0, cache=False)
    plain = reduce_dimensions(digits, 2, 2, seed=0, cache=False)
    np.testing.assert_allclose(scaled.X_test, plain.X_test, atol=1e-4)


def test_ratio_one_keeps_all_features_but_transforms(digits):
    reduced = reduce_dimensions(digits, "pca", 1.0, cache=False)
    assert reduced.input_shape == (64,)
    assert not np.allclose(reduced.X_train, digits.X_train)
    assert reduced_dimension(64, 2.5) == 26 and reduced_dimension(64, 1.6) == 40


def test_reduction_is_fitted_on_train_only(digits):
    changed = replace(digits, X_val=digits.X_val * 5 + 1, X_test=digits.X_test[::-1].copy())
    for method in ("pca", "kernel_pca_rbf", "spectral_embedding"):
        original = reduce_dimensions(digits, method, 4, cache=False)
        other = reduce_dimensions(changed, method, 4, cache=False)
        np.testing.assert_array_equal(original.X_train, other.X_train)
        assert not np.allclose(original.X_val, other.X_val)


def test_large_methods_fit_on_a_subsample_and_transform_every_row(digits):
    reduced = reduce_dimensions(digits, "isomap", 8, max_fit_rows=300, cache=False)
    assert reduced.meta["dr_fit_rows"] == 300
    assert len(reduced.X_train) == len(digits.X_train) and np.isfinite(reduced.X_train).all()
    assert reduce_dimensions(digits, "pca", 8, max_fit_rows=300,
                             cache=False).meta["dr_fit_rows"] == len(digits.X_train)
    spectral = reduce_dimensions(digits, "spectral_embedding", 8, cache=False)
    assert spectral.meta["dr_out_of_sample"] == "knn_extension"


def test_image_datasets_are_flattened_before_reduction(digits_images):
    reduced = reduce_dimensions(digits_images, "pca", 2, cache=False)
    assert reduced.kind == "tabular" and reduced.input_shape == (32,)


def test_bad_reduction_arguments_raise_named_value_errors(digits):
    with pytest.raises(ValueError, match="dr_method must be one of .*1 rp_gaussian_scaled"):
        reduce_dimensions(digits, "tsne", 2)
    with pytest.raises(ValueError, match="dr_method"):
        reduce_dimensions(digits, 12, 2)
    with pytest.raises(ValueError, match="dr_ratio=200 leaves k = .* = 0"):
        reduce_dimensions(digits, "pca", 200)
    with pytest.raises(ValueError, match="dr_ratio must be a finite number >= 1"):
        reduce_dimensions(digits, "pca", 0.5)
    with pytest.raises(ValueError, match="dr_ratio gives k = 32.*max_fit_rows"):
        reduce_dimensions(digits, "isomap", 2, max_fit_rows=20)


# -- image downsampling ------------------------------------------------------------------
@pytest.mark.parametrize("image_filter", range(1, 7))
def test_every_filter_downsamples_to_the_target_size(digits_images, image_filter):
    small = downsample_images(digits_images, image_filter, 4, cache=False)
    assert small.input_shape == (1, 4, 4) and small.kind == "image"
    assert small.meta["image_filter_name"] == IMAGE_FILTERS[image_filter - 1]
    np.testing.assert_allclose(small.X_train.mean(), 0, atol=1e-4)
    np.testing.assert_allclose(small.X_train.std(), 1, atol=1e-4)
    mnist_like = synthetic_images(28)
    for size in (14, 21):
        resized = downsample_images(mnist_like, IMAGE_FILTERS[image_filter - 1], size, cache=False)
        assert [X.shape for X in splits(resized)] == [(20, 1, size, size)] * 3
        assert all(np.isfinite(X).all() for X in splits(resized))


def test_filters_differ_and_cifar_sizes_work():
    cifar_like = synthetic_images(32, channels=3, n=6)
    outputs = [downsample_images(cifar_like, f, 24, cache=False).X_test for f in IMAGE_FILTERS]
    assert all(X.shape == (6, 3, 24, 24) for X in outputs)
    for i in range(6):
        for j in range(i + 1, 6):
            assert not np.allclose(outputs[i], outputs[j]), (IMAGE_FILTERS[i], IMAGE_FILTERS[j])


@pytest.mark.parametrize("name", IMAGE_FILTERS)
def test_float_resizing_matches_pillows_uint8_resizing(name):
    """Our float path equals Pillow's ordinary 8-bit result up to its rounding."""
    pixels = np.random.default_rng(0).integers(60, 196, size=(28, 28)).astype(np.uint8)
    filter_id = Image.Resampling[name.upper()]
    as_uint8 = np.asarray(Image.fromarray(pixels).resize((14, 14), filter_id), dtype=np.float32)
    as_float = np.asarray(Image.fromarray(pixels.astype(np.float32)).resize((14, 14), filter_id))
    assert np.abs(as_float - as_uint8).max() <= 1.0


def test_bad_downsampling_arguments_raise_named_value_errors(digits, digits_images):
    with pytest.raises(ValueError, match=r"image_size must be between 1 and the native size"):
        downsample_images(digits_images, 1, 9)
    with pytest.raises(ValueError, match="image_size must be between"):
        downsample_images(digits_images, 1, 0)
    with pytest.raises(ValueError, match="image_size applies to image datasets"):
        downsample_images(digits, 1, 4)
    with pytest.raises(ValueError, match="image_filter must be one of .*6 box"):
        downsample_images(digits_images, 7, 4)


# -- prepare_for_config ------------------------------------------------------------------
def test_prepare_applies_dr_keys_of_an_ffnn_config(digits):
    config = {"num_layers": 2, "neurons_1": 100, "neurons_2": 50, "neurons_3": None,
              "dr_method": 5, "dr_ratio": 2.0, "quant_bits": 8}
    prepared = prepare_for_config(digits, config, seed=0)
    assert prepared.input_shape == (32,) and prepared.meta["dr_ratio"] == 2.0
    assert prepare_for_config(digits, {"num_layers": 1, "quant_bits": 32}) is digits
    assert prepare_for_config(digits, {"dr_method": None, "dr_ratio": None}) is digits
    with pytest.raises(ValueError, match="dr_ratio must be set"):
        prepare_for_config(digits, {"dr_method": 3})


def test_prepare_applies_image_keys_of_a_lenet_config(digits_images):
    prepared = prepare_for_config(digits_images, {"image_filter": 3, "image_size": 4,
                                                  "kernel_size": 3})
    assert prepared.input_shape == (1, 4, 4) and prepared.meta["image_filter_name"] == "bilinear"
    native = prepare_for_config(digits_images, {"image_filter": 3, "image_size": 8})
    np.testing.assert_array_equal(native.X_train, digits_images.X_train)
    assert prepare_for_config(digits_images, {"image_size": 8}) is digits_images
    with pytest.raises(ValueError, match="image_filter is not set"):
        prepare_for_config(digits_images, {"image_size": 4})
    with pytest.raises(ValueError, match="image_size must be between"):
        prepare_for_config(digits_images, {"image_filter": 1, "image_size": 16})


# -- caching -----------------------------------------------------------------------------
def test_cache_hits_return_equal_arrays_without_recomputing(digits, isolated_cache):
    cache, config = default_cache(), {"dr_method": "kernel_pca_rbf", "dr_ratio": 4}
    stats = lambda: (cache.stats.memory_hits, cache.stats.disk_hits, cache.stats.misses)  # noqa
    hits, disk, misses = stats()
    first = prepare_for_config(digits, config)
    assert stats() == (hits, disk, misses + 1)
    second = prepare_for_config(digits, config)
    assert stats() == (hits + 1, disk, misses + 1)
    for a, b in zip(splits(first), splits(second)):
        np.testing.assert_array_equal(a, b)

    second.X_train[:] = 0  # callers get copies: the cache stays intact
    cache.clear_memory()
    from_disk = prepare_for_config(digits, config)
    assert stats() == (hits + 1, disk + 1, misses + 1)
    np.testing.assert_array_equal(from_disk.X_train, first.X_train)
    assert len(list((isolated_cache / "transforms").glob("reduce-*.npz"))) == 1
    assert not list((isolated_cache / "transforms").glob(".tmp-*"))


def test_cache_never_serves_other_inputs(digits):
    cache = default_cache()
    base = reduce_dimensions(digits, "pca", 4, seed=0)
    misses = cache.stats.misses
    nudged = replace(digits, X_train=digits.X_train + np.float32(1e-3))
    assert not np.array_equal(reduce_dimensions(nudged, "pca", 4).X_train, base.X_train)
    reduce_dimensions(digits, "pca", 5, seed=0)
    reduce_dimensions(digits, "factor_analysis", 4, seed=0)
    reduce_dimensions(digits, "factor_analysis", 4, seed=1)
    assert cache.stats.misses == misses + 4
    same_k = reduce_dimensions(digits, "pca", 4.01, seed=0)  # k = 16 again: shared entry
    assert cache.stats.misses == misses + 4 and same_k.meta["dr_ratio"] == 4.01
    np.testing.assert_array_equal(same_k.X_val, base.X_val)


def test_cached_file_with_a_different_key_is_not_served(tmp_path):
    store = ArrayCache(tmp_path)
    store.put({"operation": "t", "value": 1}, {"a": np.arange(3)})
    written = next(tmp_path.glob("t-*.npz"))
    _, other_digest = store._encode_key({"operation": "t", "value": 2})
    written.rename(tmp_path / f"{other_digest}.npz")  # simulate a hash collision
    store.clear_memory()
    assert store.get({"operation": "t", "value": 2}) is None


def test_concurrent_writers_leave_one_valid_file(tmp_path):
    key, value = {"operation": "c"}, {"a": np.arange(200_000, dtype=np.float32)}
    writers = [threading.Thread(target=lambda: [ArrayCache(tmp_path).put(key, value)
                                                for _ in range(5)]) for _ in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert [p.name.startswith("c-") for p in tmp_path.iterdir()] == [True]
    np.testing.assert_array_equal(ArrayCache(tmp_path).get(key)["a"], value["a"])


def test_memory_and_disk_budgets_evict_least_recently_used(tmp_path):
    entry = {"a": np.zeros(1000, dtype=np.float64)}  # 8 kB
    store = ArrayCache(tmp_path, max_memory_bytes=20_000, max_disk_bytes=20_000)
    for i in range(3):
        store.put({"operation": "b", "i": i}, entry)
    assert len(list(tmp_path.glob("b-*.npz"))) == 2
    assert store.get({"operation": "b", "i": 0}) is None
    assert store.get({"operation": "b", "i": 2}) is not None
    assert store.stats.memory_hits == 1
