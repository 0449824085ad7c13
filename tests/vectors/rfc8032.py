"""Ed25519 (RFC 8032, section 5.1) in pure Python, for generate.py.

Python's standard library has no Ed25519, and the vectors' expected values
must not come from changewire's own code, so this module follows the RFC's
own Python reference (section 6) in extended coordinates: hashlib's SHA-512
and integer arithmetic, nothing else.  It is slow (milliseconds per
operation) and not constant time; it signs test vectors, never real
messages.  `self_test()` checks it against RFC 8032's TEST 1, 2 and 3
(section 7.1) and generate.py runs it before writing anything.
"""

import hashlib

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493   # order of the base point
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _inv(x):
    return pow(x, P - 2, P)


def _add(p1, p2):
    """Point addition in extended coordinates (X, Y, Z, T) (RFC 8032 5.1.4)."""
    a = (p1[1] - p1[0]) * (p2[1] - p2[0]) % P
    b = (p1[1] + p1[0]) * (p2[1] + p2[0]) % P
    c = 2 * p1[3] * p2[3] * D % P
    d = 2 * p1[2] * p2[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, point):
    q = (0, 1, 1, 0)   # the neutral element
    while s > 0:
        if s & 1:
            q = _add(q, point)
        point = _add(point, point)
        s >>= 1
    return q


def _equal(p1, p2):
    return (p1[0] * p2[2] - p2[0] * p1[2]) % P == 0 and (p1[1] * p2[2] - p2[1] * p1[2]) % P == 0


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * _inv(D * y * y + 1) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


_GY = 4 * _inv(5) % P
_GX = _recover_x(_GY, 0)
G = (_GX, _GY, 1, _GX * _GY % P)


def compress(point):
    zinv = _inv(point[2])
    x, y = point[0] * zinv % P, point[1] * zinv % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decompress(data):
    """The point encoded by 32 bytes, or None (RFC 8032 5.1.3)."""
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def _sha512_int(data):
    return int.from_bytes(hashlib.sha512(data).digest(), "little")


def _expand(seed):
    digest = hashlib.sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, digest[32:]


def public_key(seed):
    """The 32-byte public key of a 32-byte seed (RFC 8032 5.1.5)."""
    a, _ = _expand(seed)
    return compress(_mul(a, G))


def sign(seed, message):
    """The 64-byte signature R || S of `message` (RFC 8032 5.1.6)."""
    a, prefix = _expand(seed)
    public = compress(_mul(a, G))
    r = _sha512_int(prefix + message) % L
    big_r = compress(_mul(r, G))
    h = _sha512_int(big_r + public + message) % L
    s = (r + h * a) % L
    return big_r + s.to_bytes(32, "little")


def verify(public, message, signature):
    """RFC 8032 5.1.7: [S]B == R + [k]A, with S < L.  Written apart from
    `sign` (it never derives a key or a nonce), so it can check it."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a_point = decompress(public)
    r_point = decompress(signature[:32])
    if a_point is None or r_point is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    k = _sha512_int(signature[:32] + public + message) % L
    return _equal(_mul(s, G), _add(r_point, _mul(k, a_point)))


# RFC 8032, section 7.1: TEST 1, TEST 2, TEST 3 (secret key, public key,
# message, signature; hex).
RFC_TESTS = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
     "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
     "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
     "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


def self_test():
    """Raises AssertionError unless RFC 8032's TEST 1-3 come out exactly."""
    for seed, public, message, signature in RFC_TESTS:
        seed, public, message, signature = (bytes.fromhex(x) for x in (seed, public, message, signature))
        assert public_key(seed) == public, "RFC 8032 public key"
        assert sign(seed, message) == signature, "RFC 8032 signature"
        assert verify(public, message, signature), "RFC 8032 verify"
        assert not verify(public, message + b"x", signature), "RFC 8032 verify of another message"
