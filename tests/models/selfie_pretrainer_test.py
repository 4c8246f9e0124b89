"""Tests of `SelfiePretrainer`: the split, the forward pass, fit, errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfie
from keras_selfie.losses.distractor_softmax_loss import distractor_logits
from keras_selfie.models.selfie_pretrainer import check_num_decoder_patches
from keras_selfie.models.selfie_pretrainer import decoder_patch_limit
from conftest import TINY


def _np(x):
    if isinstance(x, keras.Variable):
        return x.numpy()
    return keras.ops.convert_to_numpy(x)


def _images(shape, seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype("float32")


@pytest.fixture(scope="module")
def tiny():
    """A tiny pretrainer (4x4 grid of 8x8 patches, d = 128, M = 4)."""
    return keras_selfie.SelfiePretrainer(
        **TINY,
        seed=11,
    )


def _fit_once(pretrainer, data, **kwargs):
    # Eager steps: tracing a ResNet's train step takes ~30 s on 2 CPUs.
    pretrainer.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    return pretrainer.fit(data, epochs=1, verbose=0, **kwargs)


class TestSplit:
    def test_disjoint_and_covering(self, tiny):
        encoder, decoder = tiny.sample_split(64)
        encoder, decoder = _np(encoder), _np(decoder)
        assert encoder.shape == (64, 12) and decoder.shape == (64, 4)
        assert encoder.dtype == np.int32 and decoder.dtype == np.int32
        for row_e, row_d in zip(encoder, decoder):
            assert len(set(row_e)) == 12 and len(set(row_d)) == 4
            assert not set(row_e) & set(row_d)
            assert sorted([*row_e, *row_d]) == list(range(16))

    def test_images_get_different_splits(self, tiny):
        _, decoder = tiny.sample_split(16)
        splits = {frozenset(row) for row in _np(decoder)}
        # 16 draws from the 1820 sets of 4 of 16 positions rarely repeat.
        assert len(splits) >= 14

    def test_consecutive_calls_differ(self, tiny):
        first = _np(tiny.sample_split(4)[1])
        second = _np(tiny.sample_split(4)[1])
        assert not np.array_equal(np.sort(first, -1), np.sort(second, -1))

    def test_same_seed_same_splits(self, tiny_config):
        a = keras_selfie.SelfiePretrainer(**tiny_config, seed=5)
        b = keras_selfie.SelfiePretrainer(**tiny_config, seed=5)
        c = keras_selfie.SelfiePretrainer(**tiny_config, seed=6)
        for _ in range(2):
            split_a = [_np(x) for x in a.sample_split(4)]
            split_b = [_np(x) for x in b.sample_split(4)]
            split_c = [_np(x) for x in c.sample_split(4)]
            np.testing.assert_array_equal(split_a[0], split_b[0])
            np.testing.assert_array_equal(split_a[1], split_b[1])
            assert not np.array_equal(split_a[1], split_c[1])

    def test_every_position_equally_likely(self, tiny):
        _, decoder = tiny.sample_split(2000)
        counts = np.bincount(_np(decoder).ravel(), minlength=16)
        frequency = counts / 2000
        # M / N = 1/4; the standard deviation of each share is ~0.01.
        np.testing.assert_allclose(frequency, 0.25, atol=0.05)

    def test_random_split_in_call(self, tiny):
        images = _images((3, 32, 32, 3))
        outputs = tiny(images, training=False)
        positions = _np(outputs["decoder_positions"])
        assert positions.shape == (3, 4)
        for row in positions:
            assert len(set(row)) == 4 and set(row) <= set(range(16))
        # Batch distractors (the default): all 3 * 4 decoder patches.
        assert _np(outputs["logits"]).shape == (3, 4, 12)
        assert _np(outputs["queries"]).shape == (3, 4, 128)
        assert _np(outputs["targets"]).shape == (3, 4, 128)

    @pytest.mark.parametrize(
        "image_size, patch_size, num_patches, default_m",
        [(32, 8, 16, 4), ((48, 32), 8, 24, 6), (96, 32, 9, 2), (40, 8, 25, 6)],
    )
    def test_default_num_decoder_patches(
        self, image_size, patch_size, num_patches, default_m
    ):
        pretrainer = keras_selfie.SelfiePretrainer(
            image_size=image_size,
            patch_size=patch_size,
            width=0.125,
            num_layers=1,
            num_heads=4,
            intermediate_dim=16,
        )
        assert pretrainer.num_patches == num_patches
        assert pretrainer.num_decoder_patches == default_m == num_patches // 4
        assert pretrainer.num_encoder_patches == num_patches - default_m
        encoder, decoder = pretrainer.sample_split(2)
        assert tuple(decoder.shape) == (2, default_m)
        assert tuple(encoder.shape) == (2, num_patches - default_m)


def _grid_model(**kwargs):
    """A pretrainer on a 3x5 grid, so that rows and columns differ."""
    model = keras_selfie.SelfiePretrainer(
        image_size=(24, 40),
        patch_size=8,
        width=0.125,
        num_layers=2,
        num_heads=4,
        intermediate_dim=32,
        seed=3,
        **kwargs,
    )
    # Non-trivial batch-norm statistics, so that inference mode matters.
    rng = np.random.default_rng(0)
    for variable in model.patch_network.non_trainable_weights:
        if "variance" in variable.path:
            value = rng.uniform(0.5, 2.0, variable.shape)
        else:
            value = rng.normal(0.0, 0.2, variable.shape)
        variable.assign(value.astype("float32"))
    return model


@pytest.fixture(scope="module")
def model():
    """The paper's formulation on a 3x5 grid."""
    return _grid_model(query="paper")


@pytest.fixture(scope="module")
def context_model():
    """The context-conditioned query (the default) on a 3x5 grid."""
    return _grid_model()


@pytest.fixture(scope="module")
def masked_model():
    """The default, with both views from P on blanked whole images."""
    return _grid_model(context_view="masked_image", target_view="masked_image")


def _patches_of(image):
    # Row-major patches of a 24x40 image: patch i at row i // 5, column i % 5.
    return image.reshape(3, 8, 5, 8, 3).transpose(0, 2, 1, 3, 4).reshape(
        15, 8, 8, 3
    )


class TestForwardPass:
    def test_logits_equal_the_forward_pass_by_hand(self, model):
        assert model.grid_size == (3, 5) and model.num_decoder_patches == 3
        images = _images((2, 24, 40, 3), seed=1)
        positions = np.array([[14, 0, 7], [3, 10, 5]], dtype="int32")
        outputs = model(images, decoder_positions=positions, training=False)
        np.testing.assert_array_equal(
            _np(outputs["decoder_positions"]), positions
        )
        row_table = _np(model.query_position_embedding.row_embeddings)
        col_table = _np(model.query_position_embedding.column_embeddings)
        assert row_table.shape == (3, 128) and col_table.shape == (5, 128)
        for b in range(2):
            patches = _patches_of(images[b])
            np.testing.assert_array_equal(patches[7], images[b, 8:16, 16:24])
            features = _np(model.patch_network(patches, training=False))
            decoder = positions[b]
            encoder = [i for i in range(15) if i not in decoder]
            pooled = _np(
                model.attention_pooling(
                    features[encoder][None], training=False
                )
            )[0]
            queries = (
                pooled + row_table[decoder // 5] + col_table[decoder % 5]
            )
            targets = features[decoder]
            logits = queries @ targets.T
            np.testing.assert_allclose(
                _np(outputs["targets"])[b], targets, rtol=1e-5, atol=1e-5
            )
            np.testing.assert_allclose(
                _np(outputs["queries"])[b], queries, rtol=1e-5, atol=1e-5
            )
            np.testing.assert_allclose(
                _np(outputs["logits"])[b], logits, rtol=1e-4, atol=1e-4
            )
        np.testing.assert_allclose(
            _np(outputs["logits"]),
            _np(distractor_logits(outputs["queries"], outputs["targets"])),
            rtol=1e-6,
        )

    def test_context_logits_equal_the_forward_pass_by_hand(
        self, context_model
    ):
        model = context_model
        assert (model.query, model.distractors, model.similarity) == (
            "context", "batch", "cosine"
        )
        assert model.temperature == 0.1 and model.encoder_position_embedding
        images = _images((2, 24, 40, 3), seed=1)
        positions = np.array([[14, 0, 7], [3, 10, 5]], dtype="int32")
        outputs = model(images, decoder_positions=positions, training=False)
        tables = {
            name: (
                _np(layer.row_embeddings),
                _np(layer.column_embeddings),
            )
            for name, layer in (
                ("query", model.query_position_embedding),
                ("encoder", model.encoder_position_embedding_layer),
            )
        }

        def embed(name, grid_positions):
            rows, columns = tables[name]
            return rows[grid_positions // 5] + columns[grid_positions % 5]

        all_queries, all_targets = [], []
        for b in range(2):
            features = _np(
                model.patch_network(_patches_of(images[b]), training=False)
            )
            decoder = positions[b]
            encoder = np.array([i for i in range(15) if i not in decoder])
            # One pooling token u0 + PE(j) per decoder position, attending
            # to the encoder patches plus their own position embeddings.
            queries = _np(
                model.attention_pooling(
                    (features[encoder] + embed("encoder", encoder))[None],
                    queries=embed("query", decoder)[None],
                    training=False,
                )
            )[0]
            all_queries.append(queries)
            all_targets.append(features[decoder])
        queries = np.stack(all_queries)
        targets = np.concatenate(all_targets)  # the 2 * 3 candidates
        np.testing.assert_allclose(
            _np(outputs["queries"]), queries, rtol=1e-5, atol=1e-5
        )
        unit_q = queries / np.linalg.norm(queries, axis=-1, keepdims=True)
        unit_t = targets / np.linalg.norm(targets, axis=-1, keepdims=True)
        logits = np.einsum("bjd,cd->bjc", unit_q, unit_t) / 0.1
        assert _np(outputs["logits"]).shape == (2, 3, 6)
        np.testing.assert_allclose(
            _np(outputs["logits"]), logits, rtol=1e-4, atol=1e-4
        )

    @pytest.mark.parametrize(
        "fixture", ["model", "context_model", "masked_model"]
    )
    def test_queries_never_see_decoder_content(self, fixture, request):
        model = request.getfixturevalue(fixture)
        images = _images((2, 24, 40, 3), seed=2)
        positions = np.array([[6, 12, 2], [0, 1, 14]], dtype="int32")
        base_outputs = model(images, decoder_positions=positions,
                             training=False)
        base = _np(base_outputs["queries"])
        # Patch 12 (row 2, column 2) of image 0 is a decoder patch.
        changed = images.copy()
        changed[0, 16:24, 16:24] = 1.0 - changed[0, 16:24, 16:24]
        out = _np(model(changed, decoder_positions=positions,
                        training=False)["queries"])
        np.testing.assert_array_equal(out, base)
        # Patch 13 of image 0 is visible: each of its queries changes (A
        # starts with BERT's small weights, so by little: single entries
        # can round to the same float32), image 1's not at all.
        changed = images.copy()
        changed[0, 16:24, 24:32] = 1.0 - changed[0, 16:24, 24:32]
        outputs = model(changed, decoder_positions=positions, training=False)
        out = _np(outputs["queries"])
        assert np.all(np.abs(out[0] - base[0]).max(axis=-1) > 1e-6)
        assert np.abs(out[0] - base[0]).max() > 1e-5
        np.testing.assert_array_equal(out[1], base[1])
        # Nor do the candidates see the visible patches (with the masked
        # image view, patch 13 is blanked out of theirs).
        np.testing.assert_array_equal(
            _np(outputs["targets"]), _np(base_outputs["targets"])
        )

    def test_encoder_sees_only_encoder_patches(self, model):
        images = _images((1, 24, 40, 3), seed=2)
        positions = np.array([[6, 12, 2]], dtype="int32")
        base = model(images, decoder_positions=positions, training=False)
        # Patch 12 (row 2, column 2) is a decoder patch: the queries must
        # not depend on it.
        changed = images.copy()
        changed[0, 16:24, 16:24] = 1.0 - changed[0, 16:24, 16:24]
        out = model(changed, decoder_positions=positions, training=False)
        np.testing.assert_array_equal(
            _np(out["queries"]), _np(base["queries"])
        )
        targets, base_targets = _np(out["targets"]), _np(base["targets"])
        np.testing.assert_array_equal(
            targets[0, [0, 2]], base_targets[0, [0, 2]]
        )
        assert not np.allclose(targets[0, 1], base_targets[0, 1])
        # Patch 13 is an encoder patch: it changes the queries only.
        changed = images.copy()
        changed[0, 16:24, 24:32] = 1.0 - changed[0, 16:24, 24:32]
        out = model(changed, decoder_positions=positions, training=False)
        assert not np.allclose(_np(out["queries"]), _np(base["queries"]))
        np.testing.assert_array_equal(
            _np(out["targets"]), _np(base["targets"])
        )

    def test_masked_image_views_equal_the_blanked_image_by_hand(
        self, masked_model
    ):
        model = masked_model
        # P's map of a 24x40 image is 6x10: 2x2 cells per 8x8 patch.
        assert model.feature_map_cells == (2, 2)
        images = _images((2, 24, 40, 3), seed=5)
        positions = np.array([[14, 0, 7], [3, 10, 5]], dtype="int32")
        outputs = model(images, decoder_positions=positions, training=False)

        def cell_features(image, blanked):
            image = image.copy()
            for position in blanked:
                row, column = divmod(int(position), 5)
                image[8 * row : 8 * row + 8, 8 * column : 8 * column + 8] = 0
            feature_map = _np(
                model.feature_map_network(image[None], training=False)
            )[0]
            assert feature_map.shape == (6, 10, 128)
            return feature_map.reshape(3, 2, 5, 2, 128).mean((1, 3)).reshape(
                15, 128
            )

        contexts, targets = [], []
        for b in range(2):
            decoder = positions[b]
            encoder = [i for i in range(15) if i not in decoder]
            contexts.append(cell_features(images[b], decoder))
            targets.append(cell_features(images[b], encoder)[decoder])
        encoder_positions = model._complement(positions)
        queries = model.predict_queries(
            np.stack(contexts), encoder_positions, positions, training=False
        )
        np.testing.assert_allclose(
            _np(outputs["targets"]), np.stack(targets), rtol=1e-5, atol=1e-5
        )
        np.testing.assert_allclose(
            _np(outputs["queries"]), _np(queries), rtol=1e-5, atol=1e-5
        )
        # The public methods give the same features.
        np.testing.assert_allclose(
            _np(model.target_features(images, positions, training=False)),
            np.stack(targets), rtol=1e-5, atol=1e-5,
        )
        context = _np(model.context_features(images, positions, False))
        for b in range(2):
            np.testing.assert_allclose(
                context[b], contexts[b], rtol=1e-5, atol=1e-5
            )

    def test_masked_context_with_patch_targets(self):
        model = _grid_model(context_view="masked_image")
        assert model.target_view == "patches"
        images = _images((2, 24, 40, 3), seed=6)
        positions = np.array([[4, 11, 8], [0, 1, 2]], dtype="int32")
        targets = _np(
            model(images, decoder_positions=positions, training=False)[
                "targets"
            ]
        )
        alone = _np(
            model.patch_network(_patches_of(images[0]), training=False)
        )
        np.testing.assert_allclose(
            targets[0], alone[positions[0]], rtol=1e-5, atol=1e-5
        )

    def test_projection_head_maps_only_the_candidates(self):
        model = _grid_model(projection_head=True)
        images = _images((2, 24, 40, 3), seed=7)
        positions = np.array([[4, 11, 8], [0, 1, 2]], dtype="int32")
        outputs = model(images, decoder_positions=positions, training=False)
        for b in range(2):
            features = _np(
                model.patch_network(_patches_of(images[b]), training=False)
            )
            hidden = model.target_head.layers[0]
            output = model.target_head.layers[1]
            by_hand = np.maximum(
                features[positions[b]] @ _np(hidden.kernel)
                + _np(hidden.bias), 0
            ) @ _np(output.kernel) + _np(output.bias)
            np.testing.assert_allclose(
                _np(outputs["targets"])[b], by_hand, rtol=1e-5, atol=1e-5
            )
        # The queries read P's features as they are: those of a model
        # without the head (the same seed, hence the same P and A).
        plain = _grid_model()
        np.testing.assert_allclose(
            _np(outputs["queries"]),
            _np(plain(images, decoder_positions=positions,
                      training=False)["queries"]),
            rtol=1e-6, atol=1e-6,
        )

    def test_order_of_decoder_positions(self, model):
        images = _images((1, 24, 40, 3), seed=3)
        a = model(images, decoder_positions=[[1, 9, 4]], training=False)
        b = model(images, decoder_positions=[[4, 1, 9]], training=False)
        permutation = [2, 0, 1]
        np.testing.assert_allclose(
            _np(b["queries"]), _np(a["queries"])[:, permutation], atol=1e-5
        )
        np.testing.assert_allclose(
            _np(b["logits"]),
            _np(a["logits"])[:, permutation][:, :, permutation],
            atol=1e-4,
        )

    def test_uint8_images_are_scaled(self, tiny):
        rng = np.random.default_rng(4)
        images = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
        positions = np.array([[0, 5, 10, 15], [3, 6, 9, 12]], dtype="int32")
        as_uint8 = tiny(images, decoder_positions=positions, training=False)
        scaled = images.astype("float32") / 255.0
        as_float = tiny(scaled, decoder_positions=positions, training=False)
        for key in ("logits", "queries", "targets"):
            np.testing.assert_allclose(
                _np(as_uint8[key]), _np(as_float[key]), rtol=1e-6, atol=1e-6
            )
        unscaled = tiny(
            images.astype("float32"),
            decoder_positions=positions,
            training=False,
        )
        assert not np.allclose(
            _np(unscaled["targets"]), _np(as_float["targets"]), atol=1e-3
        )

    @pytest.mark.parametrize("query", ["paper", "context"])
    def test_loss_and_accuracy_from_outputs(self, tiny_config, query):
        model = keras_selfie.SelfiePretrainer(**tiny_config, query=query,
                                              seed=11)
        images = _images((2, 32, 32, 3), seed=5)
        positions = np.array([[1, 2, 3, 4], [15, 14, 13, 12]], dtype="int32")
        outputs = model(images, decoder_positions=positions, training=False)
        logits = _np(outputs["logits"]).astype("float64")
        # The paper: the 4 patches of the image, answer j. Batch
        # distractors: the 8 patches of the batch, answer b * 4 + j.
        if query == "paper":
            assert logits.shape == (2, 4, 4)
            labels = np.tile(np.arange(4), (2, 1))
        else:
            assert logits.shape == (2, 4, 8)
            labels = np.arange(2)[:, None] * 4 + np.arange(4)[None]
        log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        expected = -np.mean(
            np.take_along_axis(log_softmax, labels[..., None], -1)
        )
        loss = model.compute_loss(y_pred=outputs)
        np.testing.assert_allclose(_np(loss), expected, rtol=1e-5)
        model.patch_accuracy_tracker.reset_state()
        result = model.compute_metrics(images, None, outputs)
        correct = logits.argmax(-1) == labels
        np.testing.assert_allclose(
            _np(result["patch_accuracy"]), correct.mean(), rtol=1e-6
        )


class TestFit:
    def test_images_only_dataset(self, tiny_config):
        pretrainer = keras_selfie.SelfiePretrainer(**tiny_config, seed=1)
        before = [_np(w) for w in pretrainer.trainable_weights]
        data = tf.data.Dataset.from_tensor_slices(
            _images((8, 32, 32, 3))
        ).batch(4)
        history = _fit_once(pretrainer, data)
        assert sorted(history.history) == ["loss", "patch_accuracy"]
        assert [m.name for m in pretrainer.metrics] == [
            "loss",
            "patch_accuracy",
        ]
        loss = history.history["loss"][0]
        accuracy = history.history["patch_accuracy"][0]
        # The logits are unnormalised dot products of 128-dim vectors.
        assert np.isfinite(loss) and loss > 0.0
        # 8 images x 4 positions: the accuracy is a multiple of 1/32.
        assert 0.0 <= accuracy <= 1.0
        assert accuracy * 32 == pytest.approx(round(accuracy * 32), abs=1e-4)
        assert int(_np(pretrainer.optimizer.iterations)) == 2
        after = [_np(w) for w in pretrainer.trainable_weights]
        changed = [not np.array_equal(a, b) for a, b in zip(before, after)]
        assert all(changed)
        metrics = pretrainer.evaluate(data, verbose=0, return_dict=True)
        assert sorted(metrics) == ["loss", "patch_accuracy"]
        assert np.isfinite(metrics["loss"])

    def test_labels_are_ignored(self, tiny_config):
        tiny_config["dropout"] = 0.0
        images = _images((4, 32, 32, 3), seed=6)
        labels = np.arange(4)
        results = []
        for data in (images, (images, labels)):
            keras.utils.set_random_seed(7)
            pretrainer = keras_selfie.SelfiePretrainer(**tiny_config, seed=2)
            dataset = tf.data.Dataset.from_tensor_slices(data).batch(4)
            history = _fit_once(pretrainer, dataset)
            results.append(
                (
                    history.history["loss"][0],
                    [_np(w) for w in pretrainer.weights],
                )
            )
        assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
        for a, b in zip(results[0][1], results[1][1]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    @pytest.mark.parametrize("dtype", ["uint8", "float32", "float16"])
    def test_image_dtypes(self, tiny_config, dtype):
        pretrainer = keras_selfie.SelfiePretrainer(**tiny_config, seed=3)
        rng = np.random.default_rng(8)
        if dtype == "uint8":
            images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
        else:
            images = rng.uniform(size=(4, 32, 32, 3)).astype(dtype)
        history = _fit_once(pretrainer, images, batch_size=4)
        loss = history.history["loss"][0]
        assert np.isfinite(loss) and loss > 0.0
        assert int(_np(pretrainer.optimizer.iterations)) == 1


class TestMixedPrecision:
    @pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
    def test_scores_in_float32_close_to_float32_model(
        self, tiny_config, policy
    ):
        reference = keras_selfie.SelfiePretrainer(**tiny_config, seed=3)
        mixed = keras_selfie.SelfiePretrainer(
            **tiny_config, seed=3, dtype=policy
        )
        for a, b in zip(reference.weights, mixed.weights):
            b.assign(a)
        images = _images((2, 32, 32, 3), seed=4)
        positions = np.array([[0, 5, 10, 15], [3, 6, 9, 12]], dtype="int32")
        outputs = mixed(images, decoder_positions=positions, training=False)
        expected = reference(
            images, decoder_positions=positions, training=False
        )
        compute_dtype = policy.split("_")[1]
        assert mixed.patch_network.output.dtype == compute_dtype
        assert mixed.attention_pooling.compute_dtype == compute_dtype
        assert all(v.dtype == "float32" for v in mixed.weights)
        for key in ("logits", "queries", "targets"):
            assert keras.backend.standardize_dtype(outputs[key].dtype) == (
                "float32"
            )
            # 16-bit P and A: 3 significant digits (bfloat16) or more.
            np.testing.assert_allclose(
                _np(outputs[key]), _np(expected[key]), rtol=0.1, atol=0.1
            )
        loss = mixed.compute_loss(y_pred=outputs)
        assert keras.backend.standardize_dtype(loss.dtype) == "float32"
        assert _np(loss) == pytest.approx(
            _np(reference.compute_loss(y_pred=expected)), rel=0.05
        )

    def test_float16_wraps_the_optimizer_in_loss_scaling(self, tiny_config):
        pretrainer = keras_selfie.SelfiePretrainer(
            **tiny_config, dtype="mixed_float16"
        )
        pretrainer.compile(optimizer="adam")
        assert isinstance(
            pretrainer.optimizer, keras.optimizers.LossScaleOptimizer
        )

    @pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
    def test_trains_without_nan(self, tiny_config, policy):
        pretrainer = keras_selfie.SelfiePretrainer(
            **tiny_config, seed=3, dtype=policy
        )
        optimizer = keras.optimizers.Adam(1e-3)
        if policy == "mixed_float16":
            # The default initial scale (2**15) overflows float16 gradients
            # for the first ~8 steps, which are then skipped; start lower.
            optimizer = keras.optimizers.LossScaleOptimizer(
                optimizer, initial_scale=2.0**6
            )
        images = np.random.default_rng(8).integers(
            0, 256, (4, 32, 32, 3), dtype=np.uint8
        )
        first_kernel = _np(pretrainer.patch_network.weights[0])
        pretrainer.compile(optimizer=optimizer, run_eagerly=True)
        history = pretrainer.fit(images, batch_size=2, epochs=1, verbose=0)
        # Both steps were applied (none skipped for non-finite gradients).
        assert int(_np(pretrainer.optimizer.iterations)) == 2
        assert np.isfinite(history.history["loss"][0])
        assert all(np.isfinite(_np(w)).all() for w in pretrainer.weights)
        assert not np.allclose(
            _np(pretrainer.patch_network.weights[0]), first_kernel
        )


class TestConfig:
    def test_get_config_from_config(self, tiny_config):
        pretrainer = keras_selfie.SelfiePretrainer(
            **tiny_config,
            num_decoder_patches=5,
            encoder_position_embedding=True,
            dropout=0.2,
            seed=4,
            name="selfie",
        )
        config = pretrainer.get_config()
        for key, value in dict(
            image_size=(32, 32),
            patch_size=8,
            num_channels=3,
            num_decoder_patches=5,
            stem="cifar",
            width=0.125,
            num_layers=1,
            num_heads=4,
            intermediate_dim=64,
            dropout=0.2,
            encoder_position_embedding=True,
            synchronized_batch_norm=False,
            seed=4,
            name="selfie",
        ).items():
            assert config[key] == value, key
        clone = keras_selfie.SelfiePretrainer.from_config(config)
        assert clone.get_config() == config
        assert len(clone.weights) == len(pretrainer.weights)
        assert clone.encoder_position_embedding_layer is not None
        for source, destination in zip(pretrainer.weights, clone.weights):
            destination.assign(source)
        images = _images((2, 32, 32, 3), seed=9)
        positions = np.array([[0, 1, 2, 3, 4], [11, 12, 13, 14, 15]])
        expected = pretrainer(
            images, decoder_positions=positions, training=False
        )
        actual = clone(images, decoder_positions=positions, training=False)
        for key in ("logits", "queries", "targets"):
            np.testing.assert_allclose(
                _np(actual[key]), _np(expected[key]), rtol=1e-6, atol=1e-6
            )


class TestErrors:
    def test_wrong_image_rank(self, tiny):
        with pytest.raises(ValueError, match="rank 4"):
            tiny(np.zeros((32, 32, 3), "float32"))

    def test_wrong_image_size(self, tiny):
        with pytest.raises(ValueError, match=r"\(batch, 32, 32, 3\)"):
            tiny(np.zeros((1, 16, 16, 3), "float32"))
        with pytest.raises(ValueError, match="image_size"):
            tiny(np.zeros((1, 32, 40, 3), "float32"))

    def test_wrong_channel_count(self, tiny):
        with pytest.raises(ValueError, match="num_channels"):
            tiny(np.zeros((1, 32, 32, 1), "float32"))

    @pytest.mark.parametrize(
        "images",
        [
            np.zeros((1, 32, 32, 3), bool),
            np.zeros((1, 32, 32, 3), "int32"),
            tf.fill((1, 32, 32, 3), "a"),
        ],
        ids=["bool", "int32", "string"],
    )
    def test_non_image_dtype(self, tiny, images):
        with pytest.raises(ValueError, match="uint8 .*floating-point"):
            tiny(images)

    @pytest.mark.parametrize("value", [8, 1, 0, 17, -2, 2.0, True, "4"])
    def test_bad_num_decoder_patches(self, tiny_config, value):
        with pytest.raises(ValueError, match="num_decoder_patches"):
            keras_selfie.SelfiePretrainer(
                **tiny_config, num_decoder_patches=value
            )

    def test_largest_num_decoder_patches(self, tiny_config):
        pretrainer = keras_selfie.SelfiePretrainer(
            **tiny_config, num_decoder_patches=7
        )
        assert pretrainer.num_encoder_patches == 9
        encoder, decoder = pretrainer.sample_split(2)
        assert tuple(decoder.shape) == (2, 7)

    def test_decoder_patch_checks(self):
        # The module functions the tuner calls as well.
        assert decoder_patch_limit((4, 4)) == 7
        with pytest.raises(ValueError, match="2x2 patch grid.*at least 5"):
            decoder_patch_limit((2, 2))
        assert check_num_decoder_patches(2, (3, 5)) == 2
        with pytest.raises(
            ValueError,
            match="Argument `m` must be an integer from 2 to 7 for a grid of "
            "16 patches.*Received: m=8",
        ):
            check_num_decoder_patches(8, (4, 4), name="m")

    def test_patch_size_not_dividing_image(self, tiny_config):
        tiny_config["patch_size"] = 5
        with pytest.raises(ValueError, match="multiples of `patch_size`"):
            keras_selfie.SelfiePretrainer(**tiny_config)

    @pytest.mark.parametrize("image_size", [16, (8, 24)])
    def test_too_few_patches(self, tiny_config, image_size):
        tiny_config["image_size"] = image_size
        with pytest.raises(ValueError, match="too small for Selfie"):
            keras_selfie.SelfiePretrainer(**tiny_config)

    def test_single_patch(self, tiny_config):
        tiny_config["image_size"] = 8
        with pytest.raises(ValueError, match="at least 2 patches"):
            keras_selfie.SelfiePretrainer(**tiny_config)

    @pytest.mark.parametrize("num_heads", [3, 256, 0])
    def test_num_heads_not_dividing_feature_dim(self, tiny_config, num_heads):
        tiny_config["num_heads"] = num_heads
        with pytest.raises(ValueError, match="num_heads"):
            keras_selfie.SelfiePretrainer(**tiny_config)

    @pytest.mark.parametrize("stem", ["resnet", None])
    def test_invalid_stem(self, tiny_config, stem):
        with pytest.raises(ValueError, match="stem"):
            keras_selfie.SelfiePretrainer(**{**tiny_config, "stem": stem})

    @pytest.mark.parametrize("width", [-0.5, 0, -1])
    def test_invalid_width(self, tiny_config, width):
        tiny_config["width"] = width
        with pytest.raises(ValueError, match="width"):
            keras_selfie.SelfiePretrainer(**tiny_config)

    @pytest.mark.parametrize("image_size", [0, (32,), (32, 0), "32"])
    def test_invalid_image_size(self, tiny_config, image_size):
        tiny_config["image_size"] = image_size
        with pytest.raises(ValueError, match="image_size"):
            keras_selfie.SelfiePretrainer(**tiny_config)

    @pytest.mark.parametrize(
        "positions",
        [
            np.zeros((1, 3), "int32"),
            np.zeros((1, 5), "int32"),
            np.arange(4, dtype="int32"),
            np.zeros((1, 4, 1), "int32"),
        ],
        ids=["too_few", "too_many", "rank_1", "rank_3"],
    )
    def test_wrong_decoder_positions_shape(self, tiny, positions):
        with pytest.raises(ValueError, match="decoder_positions"):
            tiny(
                np.zeros((1, 32, 32, 3), "float32"),
                decoder_positions=positions,
            )

    @pytest.mark.parametrize(
        "positions",
        [[[0, 0, 1, 2]], [[0, 1, 2, 16]], [[0, 1, 2, -1]]],
        ids=["repeated", "too_large", "negative"],
    )
    def test_invalid_decoder_positions_values(self, tiny, positions):
        # A repeated position drops an encoder patch and a negative one
        # puts the patch to predict among the encoder's inputs, silently.
        with pytest.raises(ValueError, match="decoder_positions"):
            tiny(
                np.zeros((1, 32, 32, 3), "float32"),
                decoder_positions=np.array(positions, "int32"),
                training=False,
            )

    @pytest.mark.parametrize(
        "kwargs",
        [
            dict(metrics=["accuracy"]),
            dict(weighted_metrics=["accuracy"]),
            dict(loss_weights=[1.0]),
        ],
    )
    def test_compile_rejects_metrics(self, tiny_config, kwargs):
        pretrainer = keras_selfie.SelfiePretrainer(**tiny_config)
        with pytest.raises(ValueError, match="SelfiePretrainer"):
            pretrainer.compile(optimizer="adam", **kwargs)


class TestSeededInitialisation:
    def test_same_seed_same_weights_whatever_ran_before(self):
        import random

        keras.utils.set_random_seed(1)
        first = keras_selfie.SelfiePretrainer(**TINY, seed=5)
        keras.utils.set_random_seed(2)
        state = random.getstate()
        second = keras_selfie.SelfiePretrainer(**TINY, seed=5)
        assert random.getstate() == state  # The caller's state is kept.
        other = keras_selfie.SelfiePretrainer(**TINY, seed=6)
        pairs = list(zip(first.weights, second.weights, other.weights))
        assert len(pairs) == len(first.weights) > 0
        for a, b, _ in pairs:
            np.testing.assert_array_equal(_np(a), _np(b))
        kernels = [(a, c) for a, _, c in pairs if "kernel" in a.path]
        assert kernels and all(
            not np.array_equal(_np(a), _np(c)) for a, c in kernels
        )
        # Dropout streams too: same masks in training mode.
        images = _images((2, 32, 32, 3))
        positions = np.array([[0, 5, 10, 15], [1, 2, 3, 4]])
        outputs = [
            _np(model(images, decoder_positions=positions,
                      training=True)["logits"])
            for model in (first, second)
        ]
        np.testing.assert_array_equal(outputs[0], outputs[1])


def test_patch_color_jitter_only_in_training_and_per_patch(tiny_config):
    model = keras_selfie.SelfiePretrainer(
        **tiny_config, patch_color_jitter=True, seed=4
    )
    # Every patch the same colour: without jitter all features are equal.
    images = np.broadcast_to(
        np.array([0.8, 0.4, 0.2], "float32"), (2, 32, 32, 3)
    ).copy()
    inference = _np(model.patch_features(images, training=False))
    np.testing.assert_array_equal(
        inference, _np(model.patch_features(images, training=False))
    )
    assert np.abs(inference - inference[:1, :1]).max() == 0.0
    training = _np(model.patch_features(images, training=True))
    # Each patch got its own distortion: (nearly) all 32 patches differ
    # (without jitter they would be one).
    flat = training.reshape(32, -1)
    assert len({tuple(np.round(row, 4)) for row in flat}) > 24
    restored = keras_selfie.SelfiePretrainer.from_config(model.get_config())
    assert restored.patch_color_jitter and restored.formulation == (
        model.formulation
    )


def test_configs_from_before_the_query_argument_load_as_the_paper(
    tiny_config,
):
    config = keras_selfie.SelfiePretrainer(
        **tiny_config, query="paper"
    ).get_config()
    for key in ("query", "distractors", "similarity", "temperature",
                "patch_color_jitter"):
        del config[key]
    restored = keras_selfie.SelfiePretrainer.from_config(config)
    assert restored.formulation == {
        "query": "paper", "distractors": "image", "similarity": "dot",
        "temperature": 1.0, "encoder_position_embedding": False,
        "context_view": "patches", "target_view": "patches",
        "projection_head": False, "patch_color_jitter": False,
    }


def test_configs_from_before_the_views_load_as_before(tiny_config):
    config = keras_selfie.SelfiePretrainer(**tiny_config).get_config()
    del config["context_view"], config["target_view"]
    del config["projection_head"]
    restored = keras_selfie.SelfiePretrainer.from_config(config)
    assert (restored.context_view, restored.target_view) == (
        "patches", "patches"
    )
    assert restored.target_head is None


@pytest.mark.parametrize(
    "distractors, expected", [("batch", 1 / (4 * 8)), ("image", 1 / 4)]
)
def test_chance_patch_accuracy_counts_one_query_s_candidates(
    tiny_config, distractors, expected
):
    model = keras_selfie.SelfiePretrainer(
        **tiny_config, distractors=distractors
    )
    assert model.num_decoder_patches == 4
    assert model.chance_patch_accuracy(8) == expected
    with pytest.raises(ValueError, match="batch_size"):
        model.chance_patch_accuracy(0)
