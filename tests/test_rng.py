import numpy as np
import pytest
from fmsim.rng import philox4x32, seed_to_key, u01_from_words

# Random123 kat_vectors, "philox4x32 10": counter (4 words), key (2 words) -> output (4 words).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize(("ctr", "key", "expected"), KAT)
def test_philox_known_answers(ctr, key, expected):
    out = philox4x32(*(np.uint64(v) for v in ctr), *(np.uint64(v) for v in key))
    assert tuple(int(v) for v in out) == expected


def test_u01_range_edges():
    assert u01_from_words(np.uint64(0), np.uint64(0)) == 0.0
    top = u01_from_words(np.uint64(0xFFFFFFFF), np.uint64(0xFFFFFFFF))
    assert top < 1.0 and top == 1.0 - 2.0**-53


def test_seed_to_key_roundtrip_and_errors():
    assert seed_to_key(2**40 + 7) == (7, 2**8)
    with pytest.raises(ValueError, match="seed"):
        seed_to_key(-1)
    with pytest.raises(ValueError, match="seed"):
        seed_to_key(2**64)
    with pytest.raises(TypeError, match="seed"):
        seed_to_key(1.5)
