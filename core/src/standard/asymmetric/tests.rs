use super::*;
use crate::standard::SigningKey;

/// RFC 8032, section 7.1, TEST 1: the secret key (seed) and its public key.
const RFC_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

fn hex32(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn seeded(n: u8) -> Ed25519SigningKey {
    Ed25519SigningKey::from_seed([n; 32])
}

#[test]
fn the_public_key_is_rfc_8032s() {
    let key = Ed25519SigningKey::from_seed(hex32(RFC_SEED));
    assert_eq!(key.public_key().to_bytes(), hex32(RFC_PUBLIC));
    assert_eq!(
        key.public_key().to_string(),
        format!("whpk_{}", BASE64.encode(hex32(RFC_PUBLIC)))
    );
}

#[test]
fn keys_round_trip_through_their_text() {
    let key = seeded(7);
    let secret = key.to_secret_string();
    assert_eq!(secret, format!("whsk_{}", BASE64.encode([7u8; 32])));
    let again = Ed25519SigningKey::parse(&secret).unwrap();
    assert_eq!(again.to_secret_string(), secret);
    let public = key.public_key().to_string();
    assert!(public.starts_with("whpk_"), "{public}");
    assert_eq!(Ed25519PublicKey::parse(&public), Ok(key.public_key()));
}

#[test]
fn debug_never_prints_the_seed() {
    let key = seeded(7);
    let shown = format!("{key:?}");
    let seed = BASE64.encode([7u8; 32]);
    assert!(
        shown.contains("redacted") && !shown.contains(&seed),
        "{shown}"
    );
    assert!(shown.contains(&key.public_key().to_string()), "{shown}");
}

#[test]
fn a_signature_verifies_and_is_deterministic() {
    let key = seeded(1);
    let sig = key.sign("msg_1", 1_700_000_000, b"{}");
    assert_eq!(sig, key.sign("msg_1", 1_700_000_000, b"{}"));
    let (version, encoded) = sig.split_once(',').unwrap();
    assert_eq!(version, "v1a");
    assert_eq!(BASE64.decode(encoded).unwrap().len(), 64);
    let public = key.public_key();
    public
        .verify("msg_1", "1700000000", &sig, b"{}", 1_700_000_100, 300)
        .unwrap();
}

#[test]
fn any_change_to_what_was_signed_is_a_mismatch() {
    let key = seeded(1);
    let public = key.public_key();
    let sig = key.sign("msg_1", 1000, b"{}");
    for (id, ts, body) in [
        ("msg_2", "1000", &b"{}"[..]),
        ("msg_1", "1001", b"{}"),
        ("msg_1", "1000", b"{ }"),
    ] {
        assert_eq!(
            public.verify(id, ts, &sig, body, 1000, 300),
            Err(Error::SignatureMismatch),
            "{id} {ts}"
        );
    }
    assert_eq!(
        seeded(2)
            .public_key()
            .verify("msg_1", "1000", &sig, b"{}", 1000, 300),
        Err(Error::SignatureMismatch)
    );
}

#[test]
fn rotation_and_hmac_entries_beside_v1a() {
    let (old, new) = (seeded(1), seeded(2));
    let hmac = SigningKey::from_bytes(*b"k").sign("m", 1000, b"b");
    let header = format!(
        "{hmac} {} {}",
        old.sign("m", 1000, b"b"),
        new.sign("m", 1000, b"b")
    );
    for public in [old.public_key(), new.public_key()] {
        public
            .verify("m", "1000", &header, b"b", 1000, 300)
            .unwrap();
    }
    assert_eq!(
        seeded(3)
            .public_key()
            .verify("m", "1000", &header, b"b", 1000, 300),
        Err(Error::SignatureMismatch)
    );
}

#[test]
fn timestamps_follow_the_hmac_rules() {
    let key = seeded(1);
    let public = key.public_key();
    let sig = key.sign("m", 1000, b"");
    assert_eq!(
        public.verify("m", "1000", &sig, b"", 1301, 300),
        Err(Error::TimestampTooOld {
            age: 301,
            tolerance: 300
        })
    );
    assert_eq!(
        public.verify("m", "1000", &sig, b"", 699, 300),
        Err(Error::TimestampTooNew {
            ahead: 301,
            tolerance: 300
        })
    );
    public.verify("m", "1000", &sig, b"", 1300, 300).unwrap();
    public.verify("m", " 1000 ", &sig, b"", 1300, 300).unwrap();
    assert!(matches!(
        public.verify("m", "soon", &sig, b"", 1000, 300),
        Err(Error::MalformedHeader {
            header: "webhook-timestamp",
            ..
        })
    ));
}

#[test]
fn headers_without_a_usable_v1a_entry_are_malformed() {
    let key = seeded(1);
    let public = key.public_key();
    let sig = key.sign("m", 0, b"");
    let hmac = SigningKey::from_bytes(*b"k").sign("m", 0, b"");
    let malformed = |header: &str| match public.verify("m", "0", header, b"", 0, 300) {
        Err(Error::MalformedHeader { header, reason }) => {
            assert_eq!(header, "webhook-signature");
            reason
        }
        other => panic!("{header:?}: {other:?}"),
    };
    assert!(malformed("").contains("no `v1a,` signature"));
    assert!(malformed(&hmac).contains("no `v1a,` signature"));
    assert!(malformed(&sig.replacen("v1a", "V1A", 1)).contains("no `v1a,` signature"));
    assert!(malformed("nocomma").contains("<version>,<base64>"));
    let encoded = &sig[4..];
    for bad in [
        "v1a,".to_string(),
        "v1a,!!!".to_string(),
        format!("v1a,{}", encoded.trim_end_matches('=')),
        format!("v1a,{}", BASE64.encode([0u8; 63])),
        format!("v1a,{}", BASE64.encode([0u8; 65])),
    ] {
        assert!(malformed(&bad).contains("not base64 of 64 bytes"), "{bad}");
    }
}

#[test]
fn a_malleated_signature_is_refused() {
    // S + L encodes the same signature equation with a non-canonical scalar;
    // strict verification refuses it (RFC 8032 section 5.1.7).
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let key = seeded(1);
    let sig = key.sign("m", 0, b"");
    let mut raw = BASE64.decode(&sig[4..]).unwrap();
    let mut carry = 0u16;
    for (byte, l) in raw[32..].iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    let forged = format!("v1a,{}", BASE64.encode(&raw));
    assert_eq!(
        key.public_key().verify("m", "0", &forged, b"", 0, 300),
        Err(Error::SignatureMismatch)
    );
}

#[test]
fn bad_key_text_is_an_invalid_secret_naming_the_format() {
    for bad in [
        "",
        "whpk_",
        "whpk_***",
        &format!("whpk_{}", BASE64.encode([9u8; 31])),
        &format!("whpk_{}", BASE64.encode([9u8; 33])),
        &format!("whsk_{}", BASE64.encode([9u8; 32])),
        &BASE64.encode(hex32(RFC_PUBLIC)),
    ] {
        match Ed25519PublicKey::parse(bad) {
            Err(Error::InvalidSecret(reason)) => assert!(reason.contains("`whpk_`"), "{reason}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // y = 2 has no x on the curve; y = 1 is the identity, of order one.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    for (bytes, words) in [(not_a_point, "not a point"), (identity, "small-order")] {
        let text = format!("whpk_{}", BASE64.encode(bytes));
        match Ed25519PublicKey::parse(&text) {
            Err(Error::InvalidSecret(reason)) => assert!(reason.contains(words), "{reason}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    for bad in [
        "whsk_",
        "whsk_***",
        &format!("whsk_{}", BASE64.encode([9u8; 31])),
        &format!("whpk_{}", BASE64.encode([9u8; 32])),
        &format!("whsec_{}", BASE64.encode([9u8; 32])),
    ] {
        match Ed25519SigningKey::parse(bad) {
            Err(Error::InvalidSecret(reason)) => assert!(reason.contains("`whsk_`"), "{reason}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}
