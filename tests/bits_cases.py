"""The matrix of runs whose bits are pinned (tests/test_bits_unchanged.py and, under the CUDA simulator,
tests/test_cuda.py).

Every architecture, weight law, method and precision, biases, a given input far outside the
renormalization window, per-layer ``c``, ``fan="avg"``, ``record="layers"`` and deep nets that
renormalize. Each case is hashed over every dataset of its file (or every array of its in-memory
result): a change of the code that moves one bit of one net changes the hash.

The golden hashes in ``GOLDEN`` were computed by fmsim 0.11.0 (commit 23ff82b), before the 0.12
redesign of the road from a configuration to its kernel, on machines with AVX-512, except 14: where a
net renormalized, ``summary/mean`` and ``summary/var`` come from ``exp``, which 0.11.0 took from NumPy
(Intel's SVML there, the C library elsewhere) and fmsim now rounds correctly on every machine
(``fmsim.running.rounding``). In those 14 cases every other dataset kept 0.11.0's bits. Regenerate the
hashes only for a change that is meant to change the bits, and say so in CHANGELOG.md::

    python tests/bits_cases.py
"""

from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np

import fmsim

FC = fmsim.FullyConnected((5, 7, 3, 6))
FC_WIDE = fmsim.FullyConnected((4, 9, 2, 8))
RES_RELU = fmsim.Residual(5, (0.7, 1.2), (4, 3), "relu")
RES_LINEAR = fmsim.Residual(5, (0.7, 1.2, 0.4), (4,), "linear")
RES_BARE = fmsim.Residual(6, (0.5, 0.9), (), "linear")
CONV1 = fmsim.Conv((2, 3, 2), (5,), 3)
CONV2 = fmsim.Conv((1, 2, 3), (3, 4), 2)
LAWS = ("gaussian", "uniform", "rademacher", "laplace", "truncated_normal")
BIG_X = tuple(1e30 * (1.0 + 0.1 * k) for k in range(5))  # M_0 ~ 1e60: outside [2^-64, 2^64], x_shift != 0


def _case(name, arch, init, method="full", precision="float64", record="summary", x=None, n_nets=1500):
    return name, dict(arch=arch, init=init, method=method, precision=precision, record=record, x=x, n_nets=n_nets)


def file_cases() -> list[tuple[str, dict]]:
    """``(name, arguments of make_config)`` of every case run into a file on the CPU."""
    cases = []
    for law in LAWS:
        cases.append(_case(f"fc-{law}-f64-bias", FC, fmsim.Init(law, 2.0, bias_var=0.2)))
        cases.append(_case(f"fc-{law}-f32", FC_WIDE, fmsim.Init(law, 2.0), precision="float32"))
        cases.append(_case(f"res-relu-{law}-f64-bias", RES_RELU, fmsim.Init(law, 2.0, bias_var=0.1)))
        cases.append(_case(f"res-linear-{law}-f32", RES_LINEAR, fmsim.Init(law, 2.0), precision="float32"))
        cases.append(_case(f"conv1d-{law}-f64-bias", CONV1, fmsim.Init(law, 2.0, bias_var=0.1)))
        cases.append(_case(f"conv2d-{law}-f32", CONV2, fmsim.Init(law, 2.0), precision="float32"))
    cases += [
        _case("fc-gaussian-exact-bias-layers", FC, fmsim.Init("gaussian", (1.0, 2.0, 3.0), bias_var=0.3),
              method="exact", record="layers"),
        _case("fc-glorot-uniform-full-layers", FC, fmsim.Init.scheme("glorot_uniform"), record="layers"),
        _case("fc-glorot-exact", FC, fmsim.Init.scheme("glorot"), method="exact"),
        _case("fc-uniform-exact-first", FC, fmsim.Init("uniform", 2.0, bias_var=0.1), method="exact_first"),
        _case("fc-laplace-exact-first-f32", FC, fmsim.Init("laplace", 2.0), method="exact_first",
              precision="float32", record="layers"),
        _case("fc-big-input-full", FC, fmsim.Init("gaussian", 2.0), x=BIG_X, record="layers"),
        _case("fc-big-input-exact", FC, fmsim.Init("gaussian", 2.0), method="exact", x=BIG_X),
        _case("fc-orthogonal-full", FC, fmsim.Init.scheme("orthogonal"), record="layers"),
        _case("fc-orthogonal-exact", FC, fmsim.Init.scheme("orthogonal_unit"), method="exact"),
        _case("res-linear-gaussian-exact-bias", RES_LINEAR, fmsim.Init("gaussian", 2.0, bias_var=0.2),
              method="exact"),
        _case("res-bare-gaussian-exact", RES_BARE, fmsim.Init("gaussian", 2.0), method="exact", record="layers"),
        _case("res-relu-gaussian-exact-bias", RES_RELU, fmsim.Init("gaussian", 2.0, bias_var=0.1), method="exact"),
        _case("res-linear-gaussian-full", RES_LINEAR, fmsim.Init("gaussian", 2.0), record="layers"),
        _case("res-linear-orthogonal-full", RES_LINEAR, fmsim.Init.scheme("orthogonal")),
        _case("res-relu-orthogonal-full", RES_RELU, fmsim.Init.scheme("orthogonal")),
        _case("res-linear-orthogonal-exact", RES_LINEAR, fmsim.Init.scheme("orthogonal"), method="exact"),
        _case("res-relu-orthogonal-exact", RES_RELU, fmsim.Init.scheme("orthogonal"), method="exact"),
        _case("conv1d-orthogonal-full", CONV1, fmsim.Init.scheme("orthogonal"), record="layers"),
        _case("conv2d-orthogonal-full", CONV2, fmsim.Init.scheme("orthogonal_unit")),
        # deep nets that leave [2^-64, 2^64] and are renormalized by powers of two
        _case("deep-fc-uniform-explodes", fmsim.FullyConnected.constant(150, 3), fmsim.Init("uniform", 4.0),
              record="layers", n_nets=1100),
        _case("deep-fc-rademacher-f32-vanishes", fmsim.FullyConnected.constant(150, 3),
              fmsim.Init("rademacher", 1.0), precision="float32", n_nets=1100),
        _case("deep-fc-exact-vanishes", fmsim.FullyConnected.constant(3000, 4), fmsim.Init("gaussian", 1.0),
              method="exact", n_nets=1100),
        _case("deep-res-exact", fmsim.Residual.scheduled(4, 400, "constant", 1.0, module_widths=(3,)),
              fmsim.Init("gaussian", 2.0), method="exact", n_nets=1100),
        _case("deep-res-relu-full", fmsim.Residual.scheduled(3, 80, "constant", 1.0, module_widths=(3,),
                                                             ending="relu"),
              fmsim.Init("laplace", 2.0), n_nets=1100),
        _case("deep-conv-full", fmsim.Conv((2,) * 81, (4,), 3), fmsim.Init("uniform", 4.0), n_nets=1100),
        _case("deep-fc-orthogonal-exact", fmsim.FullyConnected.constant(2000, 5), fmsim.Init.scheme("orthogonal"),
              method="exact", n_nets=1100),
    ]
    return cases


def device_cases() -> list[tuple[str, dict]]:
    """Cases small enough for the CUDA simulator (3 nets), hashed from the in-memory result."""
    small = dict(n_nets=3, record="layers")
    return [
        _case("cuda-fc-laplace-bias", FC, fmsim.Init("laplace", 2.0, bias_var=0.2), **small),
        _case("cuda-fc-rademacher-f32", FC, fmsim.Init("rademacher", 2.0), precision="float32", **small),
        _case("cuda-fc-exact-bias", FC, fmsim.Init("gaussian", 2.0, bias_var=0.3), method="exact", **small),
        _case("cuda-fc-big-input", FC, fmsim.Init("uniform", 2.0), x=BIG_X, **small),
        _case("cuda-fc-orthogonal-exact", FC, fmsim.Init.scheme("orthogonal"), method="exact", **small),
        _case("cuda-res-relu-uniform", RES_RELU, fmsim.Init("uniform", 2.0, bias_var=0.1), **small),
        _case("cuda-res-linear-f32", RES_LINEAR, fmsim.Init("truncated_normal", 2.0), precision="float32", **small),
        _case("cuda-res-linear-exact", RES_LINEAR, fmsim.Init("gaussian", 2.0, bias_var=0.2), method="exact",
              **small),
        _case("cuda-res-relu-exact", RES_RELU, fmsim.Init("gaussian", 2.0), method="exact", **small),
        _case("cuda-res-orthogonal-exact", RES_LINEAR, fmsim.Init.scheme("orthogonal"), method="exact", **small),
        _case("cuda-res-relu-orthogonal-exact", RES_RELU, fmsim.Init.scheme("orthogonal"), method="exact", **small),
        _case("cuda-conv1d-laplace-bias", CONV1, fmsim.Init("laplace", 2.0, bias_var=0.1), **small),
        _case("cuda-conv2d-f32", CONV2, fmsim.Init("uniform", 2.0), precision="float32", **small),
        _case("cuda-deep-fc-explodes", fmsim.FullyConnected.constant(40, 2), fmsim.Init("uniform", 12.0), **small),
    ]


def config_of(arguments: dict) -> fmsim.RunConfig:
    from fmsim.running.simulate import make_config

    a = dict(arguments)
    return make_config(a.pop("arch"), a.pop("init"), a.pop("n_nets"), seed=2026, chunk_size=1024, **a)


def _digest_array(h, name: str, value) -> None:
    value = np.asarray(value)
    if value.dtype.kind in "OSU":
        text = json.dumps([v.decode() if isinstance(v, bytes) else str(v) for v in value.ravel().tolist()])
        data = text.encode()
    else:
        data = np.ascontiguousarray(value).tobytes()
    h.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
    h.update(data)


def file_hash(path, group: str = "/") -> str:
    """SHA-256 over every dataset of a run group (its name, dtype, shape and bytes), in name order."""
    h = hashlib.sha256()
    with h5py.File(path, "r") as f:
        g = f[group]
        names = []
        g.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        for name in sorted(names):
            _digest_array(h, name, g[name][()])
        for key in ("config", "stream_layout"):
            _digest_array(h, "@" + key, np.asarray(str(g.attrs[key])))
    return h.hexdigest()


def result_hash(res: fmsim.SimulationResult) -> str:
    """SHA-256 over every array of an in-memory result."""
    h = hashlib.sha256()
    for name in ("final", "log_final", "fm2", "lengths", "log_lengths"):
        value = getattr(res, name)
        if value is not None:
            _digest_array(h, name, value)
    for name in ("count", "mean", "var", "n_zero", "log_mean", "log_var", "fm2_mean", "fm2_var", "log_of_mean",
                 "log_of_var"):
        _digest_array(h, "summary." + name, getattr(res.summary, name))
    return h.hexdigest()


def run_file_case(arguments: dict, path) -> str:
    fmsim.run_to_file(config_of(arguments), path)
    return file_hash(path)


def run_device_case(arguments: dict, backend: str) -> str:
    cfg = config_of(arguments)
    res = fmsim.simulate(cfg.arch, cfg.init, cfg.n_nets, cfg.seed, method=cfg.method, backend=backend,
                         record=cfg.record, x=cfg.x, chunk_size=cfg.chunk_size, precision=cfg.precision)
    return result_hash(res)


GOLDEN: dict[str, str] = {
    'fc-gaussian-f64-bias': 'e245b33aa94bc524926e6c0457ad276d59b74ff1c87ad56180126cef2e6bad22',
    'fc-gaussian-f32': 'fdfa9d4e439f322d863bfd29b97931a26411ea54bd8bff4a6e3f7d9ed63c16f0',
    'res-relu-gaussian-f64-bias': 'dde9da2b34d0f419174a2264778648d870378719cd04fb01265e5fc6ed29c5cb',
    'res-linear-gaussian-f32': 'b8d9468183ef51c48e1d6a669ee57976901f57a52683097c96c7b3b9e1155c75',
    'conv1d-gaussian-f64-bias': 'd98a34130ce911cec3695017b2a5e58538067f334e439e43416523c8e7941dfd',
    'conv2d-gaussian-f32': 'e3c60f2eaa15c93ed821df19fa3c62d30f8ccb3aab229e77cb7d94ec6daf61bf',
    'fc-uniform-f64-bias': '9921e007304b2e6d32a08f083e7a6968a97b1f9044a5a5ec4a81be2b053f7282',
    'fc-uniform-f32': '9c92f8f0bc8c90d547cc49ce9974f2073b2b15d21cd56283582fc270acf7c72d',
    'res-relu-uniform-f64-bias': '659281e48a67d74b646d138f8bd8a6bdc4ebbf24c4151945ba782683b45aa073',
    'res-linear-uniform-f32': 'f873fd0644ab4e9b943d5e3391c82876adf216269767203df2d5c62bf88aab38',
    'conv1d-uniform-f64-bias': '3da9135901158e96d2eb6b26b9f0e5f0cece3a55fe1207a8127c4e246dc59305',
    'conv2d-uniform-f32': '76a81daa18f81fa5ae1519e8fb74f6ea925af70a6c95685d9a7e898b1cfbba25',
    'fc-rademacher-f64-bias': '877cae6f376bd0f324a270d2887d097beb7177ac6b8b19f927f99063b0c40d04',
    'fc-rademacher-f32': 'd21828106bd0b0b06bc01b9d09df3323ad8ac5e8b74be2dc579c9244fb6ae189',
    'res-relu-rademacher-f64-bias': 'a01f465cdf709fc7d8bc1c0f2eee469d025de230954df04658c4ef8959079ac1',
    'res-linear-rademacher-f32': 'e88e403f1afde096c64aacde5045e8e42f5fd129f997ff9dc1815415ee8d626a',
    'conv1d-rademacher-f64-bias': 'baf290315008905ab6ec929e9df282e702ed7df6832f575a4b424978732448b0',
    'conv2d-rademacher-f32': '8e16c6088ac5681b0f8e1090587717d6ce00c71e5a6da9a9f1f1ea1b9528fe22',
    'fc-laplace-f64-bias': '06c61b3f5b000a8796a577a7b655159b4a7cd8cd7676227666a6c6ab2bf467e6',
    'fc-laplace-f32': '1de493a879b1586ea5a3b6be76cd20dc88b1488e35ed6195f00a1b3a6f76b3a9',
    'res-relu-laplace-f64-bias': 'd8c19def7cc98a7ba46fd0270ec7a1ce316bc016d7fa10b2557f6e739d5f5a3f',
    'res-linear-laplace-f32': '0eabc07b1ac3aec494b8dfe73b5a476c37aa4bfb1e30185f73d6f118d3433ed1',
    'conv1d-laplace-f64-bias': '27a833847b19c8eb68f457d7a6db63f1c022d3865d1efa8b451cc91ef570c8a1',
    'conv2d-laplace-f32': 'acc21ea223cbaf085ff1e0a3974a943a266134ee065015a5df28e8a58583b156',
    'fc-truncated_normal-f64-bias': '0a4e333894c064b78d44514b57e752b22eb45e8286198c11de598cb5cfbd9820',
    'fc-truncated_normal-f32': '1a1f9861d48e4054cb63e8699dcf1fecbcd0c7571797085a68246742d0d7e2c4',
    'res-relu-truncated_normal-f64-bias': '11d2c8e5d882c3ac1349b35db036d4c17bc3431ae7a230798346b84ad261669d',
    'res-linear-truncated_normal-f32': '25e7ac6a81550f88b3551cda71874788482c4f5fcc19c2da82caf5b3e5f90176',
    'conv1d-truncated_normal-f64-bias': '3512119ce6fbc7be37d8efd3709192fd7434627871e6cf398e3d23a9063898a4',
    'conv2d-truncated_normal-f32': 'f2b555ba5de3fde4c78b361fb79eb88f930477f549fcf627857893dbee0a8966',
    'fc-gaussian-exact-bias-layers': '81a931fb079c988f106f56fc25a32e00d662aec0433a2cac36502d01d53b1ce1',
    'fc-glorot-uniform-full-layers': '79a32ecf6ffb80ae6802e6d1869154d31a0ec4cbc0ce1e54f4bb019bf17a576f',
    'fc-glorot-exact': '0cffd3702df28c4b83918972c7dd1784aa0fb4bbe585f9d72b780d1502fc0352',
    'fc-uniform-exact-first': '9702d4f6ac2c5d5c64e6f2e4ede4a7b137e332594fab8eca20502ca41295444a',
    'fc-laplace-exact-first-f32': '50d8bdf0e4fe476d5a9a92603053797ebc00dc1da8f9b04fe63f5552922bc79c',
    'fc-big-input-full': 'cac213172f013404af80230c0a086357d544bcc513c704a53d71ce68e877075f',
    'fc-big-input-exact': '6edc4ead2a6aa1d280743212b6831cdba1b26b775bc811ec0bc585d7f1735e63',
    'fc-orthogonal-full': '96085e2da0aaf10e0e04f3d3d2f29767b810f86543379be7557063671a268ac4',
    'fc-orthogonal-exact': '18fa24929a42c24ee2644e8699173370c29805044f769324e8cb30ae1c1027cd',
    'res-linear-gaussian-exact-bias': 'af8f772100f4010c04058625c10368e4de20b056fdea3440cd6872572c1e7a4e',
    'res-bare-gaussian-exact': 'df49543ba0fff68bf88e5b82f5e84197bb9fefe77f4602ce5de4c5f82e6a3c78',
    'res-relu-gaussian-exact-bias': 'f5ca04357c00ba5fef514eb2d53f62bc5485b40e3346e6f56647fd4c02c7d4e0',
    'res-linear-gaussian-full': '8e8f523488bc7372b34da546a25e2b95658e641f61de4b9836714287a017095d',
    'res-linear-orthogonal-full': '5cc57e50dc0623e6f3be988cfae6c3209a9e0a3c651a7ac6995d10afe129cc7b',
    'res-relu-orthogonal-full': 'ca7a544cf998b461a37df1497e27953c2f8917f3d6a95b3aebae51df19c2df7b',
    'res-linear-orthogonal-exact': '36906b5d992eb3ba855e21df98d987789a54aa6fb6fa31eb21964fa67bb9a1ca',
    'res-relu-orthogonal-exact': '3bf62eb22270c2cc452d16161a8430b7751e033b1b84df3e7c72357aef190be3',
    'conv1d-orthogonal-full': '57e096880f0ba3c8dc65c2726f45481b50a1033ef8a0ae1edfae297044c9ead5',
    'conv2d-orthogonal-full': 'd880e26e5b2d3598206a48f1c8e7079dd4e3b6b4429dc44c0d3da7191eb5e6c9',
    'deep-fc-uniform-explodes': '9b9b31113bb669160a3dca43124c618353822541010014422159a25941778b21',
    'deep-fc-rademacher-f32-vanishes': '97b3d0bd9499cbffa8e0e2bc8c8731dae72a7296dbcf4bc5bcc8d80d55a00d7c',
    'deep-fc-exact-vanishes': '368d2c92a4649e804889a0714bbb980581d68a5d48ba933397dc962d7816f1bf',
    'deep-res-exact': '87ad332e874c1870bbeca95c1c1ba61becdc790e76a60e43d5a2e754fc34498c',
    'deep-res-relu-full': 'dd2184f801c564cdffc6b5da540256bbcc50e63c25299dc2617a1e595b4e8006',
    'deep-conv-full': '638e2c9405e4941b1f13f34d749dfe1663d041ab847db3f9e4fe989b36e0fc21',
    'deep-fc-orthogonal-exact': '2e5023dbf9d279067beee528999dba8a6dec0bc2a319dbe72cc073cc422acb15',
    'cuda-fc-laplace-bias': 'a7c22eaf26b0a73a6666ebc9ec678e73cdb63501be2802a4b295105ce265f5f8',
    'cuda-fc-rademacher-f32': 'b92742352a568a6adc0604c9b37aba8adeec6a59d7e54bd9cb5c24c36ed09098',
    'cuda-fc-exact-bias': '7a5f7ef0f789d8bab3fea1d8b45ec3c4da81b94f0574feffea192fffe6fc7e18',
    'cuda-fc-big-input': '8a20e13aadd38de0e8d0c70f496db46b1d36cad877bfcdce5121678f15aa70fb',
    'cuda-fc-orthogonal-exact': '48362829853b771102a017d73635157f4469e5e990fac006c6cf83342bbb77cc',
    'cuda-res-relu-uniform': '8ab9a19123ed325a84d5b7d6ad04dff076ddc17c2d8712ebab21fd20edab68b4',
    'cuda-res-linear-f32': '90d3b73c98606e120cd9b2677069cb1cf26ad74102909b46e8f4185d78842ce7',
    'cuda-res-linear-exact': 'c740e12e2eb66221d264d20b391a531e396676dd725e86be793a58494a8a6007',
    'cuda-res-relu-exact': '4b3d9c153d35b5382db30091da44a59e405b68a3ba85a38fc595c011e32a2ca3',
    'cuda-res-orthogonal-exact': '5f942290391f683ea7f0b5847a313940c37ca054a1bfc5f46d211050afae2679',
    'cuda-res-relu-orthogonal-exact': 'd277163e6b2c3e3e853074f5d74d55fb9cde6cd14b42a97e104efa77410d0ed4',
    'cuda-conv1d-laplace-bias': 'f09e929ef2b97eb7fd3d10609329528d6cd4df86e4f2511cb1a281db738b51ca',
    'cuda-conv2d-f32': '6426886884eb498f7c1d1a85670285ef8afc251191fa0edebc046bf5ecd02d77',
    'cuda-deep-fc-explodes': '0d1ac4212caabc24e3f3eebdc3bb1055d20426f8d0a552e5886d04fdaadc505c',
}

if __name__ == "__main__":
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name, arguments in file_cases():
            print(f"    {name!r}: {run_file_case(arguments, os.path.join(tmp, name + '.h5'))!r},", flush=True)
    for name, arguments in device_cases():
        print(f"    {name!r}: {run_device_case(arguments, 'cpu')!r},", flush=True)
