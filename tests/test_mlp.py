"""MNIST loader, NumPy MLP (backprop against finite differences), SGD and the onset record."""

import shutil

import h5py
import numpy as np
import pytest
from conftest import REPO_MNIST, assert_within_se
from fmsim.mlp import MLP
from fmsim.mnist import FILES, load_mnist
from fmsim.train import SGDConfig, read_run, run_meta, train, write_run
from scipy import stats

from fmsim import FullyConnected, Init, simulate


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


# ----------------------------------------------------------------- loader
def test_mnist_shapes_ranges_and_label_counts(mnist):
    assert mnist.x_train.shape == (60000, 784) and mnist.x_train.dtype == np.float32
    assert mnist.x_test.shape == (10000, 784)
    assert mnist.x_train.min() == 0.0 and mnist.x_train.max() == 1.0
    # label counts published with the data (the repository's data/mnist/README.md)
    assert np.bincount(mnist.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_missing_file_says_which_and_how(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"train-images-idx3-ubyte.gz not found in {tmp_path}: put"):
        load_mnist(tmp_path)


def test_mnist_damaged_file_is_refused(tmp_path):
    for name in FILES:
        shutil.copy(REPO_MNIST / name, tmp_path / name)
    raw = bytearray((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes())
    raw[-9] ^= 1
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="SHA-256"):
        load_mnist(tmp_path)


# --------------------------------------------------------------- the MLP
def _toy(seed, n=24, n_in=7, classes=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_in)), rng.integers(0, classes, size=n)


@pytest.mark.parametrize("activation,loss", [("relu", "xent"), ("tanh", "xent"), ("relu", "mse"), ("tanh", "mse")])
def test_gradient_matches_central_differences(activation, loss):
    mlp = MLP((7, 9, 6, 4), activation=activation, loss=loss)
    x, y = _toy(1)
    theta = mlp.init_params(Init("gaussian", 2.0, bias_var=0.1), seed=3, dtype=np.float64)
    _, grad = mlp.loss_and_grad(theta, x, y)
    eps = 1e-6
    fd = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = eps
        fd[i] = (mlp.batch_loss(theta + e, x, y) - mlp.batch_loss(theta - e, x, y)) / (2 * eps)
    # central differences: O(eps^2) truncation + O(1e-16/eps) round-off, far below 1e-7 here
    np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-7 * np.abs(grad).max())


def test_float32_gradient_agrees_with_float64():
    mlp = MLP((7, 16, 16, 4))
    x, y = _toy(2)
    t64 = mlp.init_params(Init.scheme("he"), seed=5, dtype=np.float64)
    g64 = mlp.loss_and_grad(t64, x, y)[1]
    g32 = mlp.loss_and_grad(t64.astype(np.float32), x.astype(np.float32), y)[1]
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, g64, rtol=0, atol=1e-5 * np.abs(g64).max())


def test_init_first_layer_equals_the_simulator():
    """On an input without zeros, layer 1 of the MLP at init is the simulator's: same seed and net, same M_1."""
    widths = (12, 8, 5, 9)
    mlp = MLP(widths + (3,), loss="mse")
    x = np.linspace(-1.0, 2.0, widths[0])  # no zero coordinate
    assert np.all(x != 0.0)
    res = simulate(FullyConnected(widths), Init.scheme("he"), n_nets=4, seed=77, method="full", record="layers", x=x)
    for net in range(4):
        fwd = mlp.forward(mlp.init_params(Init.scheme("he"), seed=77, net=net, dtype=np.float64), x[None, :])
        m = [float(np.sum(h * h)) / h.size for h in fwd.post]  # M_0 .. M_{L-1}
        np.testing.assert_allclose(m[:2], res.lengths[net, :2], rtol=1e-12)


def test_init_hidden_lengths_have_the_simulated_law():
    """Deeper layers meet zero inputs, which the simulator draws no weight for: there the MLP's M_j
    (weight k on input k) and the simulator's (weight k on the k-th nonzero input) agree in law."""
    widths = (6, 5, 4, 6)
    mlp = MLP(widths + (2,), loss="mse")
    x = np.array([0.5, -1.0, 1.5, 0.3, -0.7, 1.1])
    n = 3000
    res = simulate(FullyConnected(widths), Init("uniform", 2.0), n_nets=n, seed=5, method="full", record="layers", x=x)
    m = np.empty((n, len(widths)))
    for net in range(n):
        fwd = mlp.forward(mlp.init_params(Init("uniform", 2.0), seed=6, net=net, dtype=np.float64), x[None, :])
        m[net] = [float(np.sum(h * h)) / h.size for h in fwd.post]
    for j in (2, 3):  # independent seeds: a two-sample KS test at a fixed seed pair
        assert stats.ks_2samp(m[:, j], res.lengths[:, j]).pvalue > 1e-3, j


def test_init_weight_variance_is_c_over_fan_in():
    mlp = MLP((400, 300, 10))
    for scheme, c in (("he", 2.0), ("lecun", 1.0), ("2x_he", 4.0)):
        W = mlp.layers(mlp.init_params(Init.scheme(scheme), seed=1, dtype=np.float64))[0][0].ravel()
        # Var estimate sum(w^2)/N has s.e. sqrt((E w^4 - (E w^2)^2)/N); 5 s.e. band
        sq = W**2
        assert_within_se(sq.mean(), c / 400, sq.std(ddof=1) / np.sqrt(sq.size), what=scheme)
    W = mlp.layers(mlp.init_params(Init.scheme("glorot"), seed=1, dtype=np.float64))[0][0].ravel()
    sq = W**2
    assert_within_se(sq.mean(), 2 / 700, sq.std(ddof=1) / np.sqrt(sq.size), what="glorot")


def test_nets_are_independent_and_reproducible():
    mlp = MLP((20, 10, 3))
    a = mlp.init_params(Init.scheme("he"), seed=1, net=0)
    assert np.array_equal(a, mlp.init_params(Init.scheme("he"), seed=1, net=0))
    assert not np.array_equal(a, mlp.init_params(Init.scheme("he"), seed=1, net=1))
    assert not np.array_equal(a, mlp.init_params(Init.scheme("he"), seed=2, net=0))


def test_bad_mlp_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="activation"):
        MLP((4, 3, 2), activation="gelu")
    with pytest.raises(ValueError, match="loss"):
        MLP((4, 3, 2), loss="hinge")
    with pytest.raises(ValueError, match=r"widths\[1\]"):
        MLP((4, 0, 2))
    with pytest.raises(ValueError, match="lr must be > 0"):
        SGDConfig(lr=0.0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        SGDConfig(batch_size=0)
    with pytest.raises(ValueError, match="target_accuracy"):
        SGDConfig(target_accuracy=1.5)
    mlp = MLP((4, 3, 2))
    with pytest.raises(ValueError, match="labels of x_train"):
        train(mlp, mlp.init_params(Init(), 0), np.zeros((5, 4), np.float32), np.full(5, 7),
              np.zeros((2, 4), np.float32), np.zeros(2, int))


# -------------------------------------------------------------- training
def test_overfits_a_small_batch(mnist):
    mlp = MLP((784, 64, 64, 10))
    x, y = mnist.x_train[:64], mnist.y_train[:64]
    theta = mlp.init_params(Init.scheme("he"), seed=4)
    run = train(mlp, theta, x, y, x, y, SGDConfig(lr=0.1, batch_size=64, max_epochs=500, evals_per_epoch=1,
                                                    dense_epochs=0, target_accuracy=1.0, stop_at_target=False), seed=0)
    assert run.started, "never reached 100% accuracy on 64 training images"
    assert run.test_accuracy[-1] == 1.0
    assert mlp.batch_loss(theta, x, y) < 0.01


def test_loss_decreases_and_training_is_deterministic(mnist):
    mlp = MLP.constant(3, 32)
    x, y = mnist.x_train[:6000], mnist.y_train[:6000]
    cfg = SGDConfig(lr=0.05, batch_size=128, max_epochs=2, stop_at_target=False)
    runs, thetas = [], []
    for _ in range(2):
        theta = mlp.init_params(Init.scheme("he"), seed=9)
        runs.append(train(mlp, theta, x, y, mnist.x_test[:2000], mnist.y_test[:2000], cfg, seed=3))
        thetas.append(theta)
    loss0 = mlp.batch_loss(mlp.init_params(Init.scheme("he"), seed=9), x, y)
    assert runs[0].train_loss[-1] < 0.5 * loss0
    assert runs[0].test_accuracy[-1] > 0.5  # chance is 0.1
    assert np.array_equal(thetas[0], thetas[1])
    assert np.array_equal(runs[0].test_accuracy, runs[1].test_accuracy)
    other = mlp.init_params(Init.scheme("he"), seed=9)
    train(mlp, other, x, y, x[:10], y[:10], cfg, seed=4)  # another batch order
    assert not np.array_equal(other, thetas[0])


def test_evaluation_schedule_and_onset():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    mlp = MLP((5, 8, 2))
    cfg = SGDConfig(lr=0.1, batch_size=100, max_epochs=3, evals_per_epoch=5, dense_epochs=1,
                    target_accuracy=1.0, stop_at_target=False)
    run = train(mlp, mlp.init_params(Init.scheme("he"), 0), x, y, x, y, cfg)
    np.testing.assert_allclose(run.eval_epoch, [0, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 3.0])
    assert np.isnan(run.train_loss[0]) and np.isfinite(run.train_loss[1:]).all()
    # onset = first evaluation at or above the target
    cfg = SGDConfig(lr=0.5, batch_size=100, max_epochs=10, evals_per_epoch=5, target_accuracy=0.9)
    run = train(mlp, mlp.init_params(Init.scheme("he"), 0), x, y, x, y, cfg)
    assert run.test_accuracy[0] < 0.9 and run.started
    first = np.flatnonzero(run.test_accuracy >= 0.9)[0]
    assert run.onset_epoch == run.eval_epoch[first] and first == len(run.eval_epoch) - 1  # stopped there


def test_exploding_init_is_reported_as_diverged(mnist):
    mlp = MLP.constant(40, 40)
    run = train(mlp, mlp.init_params(Init("gaussian", 8.0), 1), mnist.x_train[:4096], mnist.y_train[:4096],
                mnist.x_test[:1000], mnist.y_test[:1000], SGDConfig(max_epochs=3))
    assert run.diverged and not run.started


def test_run_round_trips_through_hdf5(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = (x[:, 1] > 0).astype(int)
    mlp, init, cfg = MLP((5, 4, 2)), Init.scheme("he"), SGDConfig(batch_size=50, max_epochs=2)
    run = train(mlp, mlp.init_params(init, 3), x, y, x, y, cfg, seed=3)
    meta = run_meta(mlp, init, cfg, 3, 0, 3)
    with h5py.File(tmp_path / "r.h5", "w") as f:
        write_run(f, "a/run_0", run, meta)
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert list(f["a"]) == ["run_0"]  # no temporary group left
        back, meta2 = read_run(f["a/run_0"])
    assert meta2 == meta
    for field in ("eval_epoch", "test_accuracy", "train_loss"):
        np.testing.assert_array_equal(getattr(back, field), getattr(run, field))
    assert back.onset_epoch == run.onset_epoch or (np.isnan(back.onset_epoch) and np.isnan(run.onset_epoch))


def test_fig1b_quick_writes_h5_and_pngs(tmp_path):
    from fmsim.experiments import fig1b

    fig1b.main(["--quick", "--quiet", "--out", str(tmp_path)])
    assert (tmp_path / "fig1b.png").stat().st_size > 10_000
    assert (tmp_path / "fig1b_fm2.png").stat().st_size > 10_000
    with h5py.File(tmp_path / "fig1b.h5", "r") as f:
        assert set(f["fm1"]) == set(fig1b.SCHEMES)
        assert "onset_epoch" in f["fm1/he/depth_4/run_0"].attrs
    fig1b.main(["--quick", "--quiet", "--out", str(tmp_path)])  # resume: nothing to do, same file
    with pytest.raises(ValueError, match="different configuration"):
        fig1b.main(["--quick", "--quiet", "--out", str(tmp_path), "--seed", "5"])
