//! The row messages of PostgreSQL's `pgoutput` protocol (version 1):
//! `Relation`, `Insert`, `Update`, `Delete`; everything else is skipped.
//! (`Begin`, `Commit` and `Message` are decoded by the replication client.)
//!
//! Values arrive in their type's text output (the stream is not binary);
//! an unchanged TOASTed value of an update's new row arrives as a marker,
//! which [`Tuple::resolve_unchanged`] fills in from the old row.

use crate::capture::Error;

/// One column of a relation, as the stream describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    /// Its name.
    pub(crate) name: String,
    /// Its type's OID.
    pub(crate) type_oid: u32,
    /// Its type modifier (-1: none).
    pub(crate) type_modifier: i32,
}

/// A table as the stream describes it (sent before its first change in a
/// session, and again after its definition changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relation {
    /// The relation's OID: changes name it.
    pub(crate) id: u32,
    /// `schema.table`.
    pub(crate) qualified_name: String,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub(crate) replica_identity: u8,
    /// Its columns, in table order (dropped and generated ones excluded).
    pub(crate) columns: Vec<Column>,
}

/// One column's value in a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// SQL NULL.
    Null,
    /// A TOASTed value the update did not change (not sent).
    Unchanged,
    /// The type's text output.
    Text(String),
}

/// A row's values, in the relation's column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tuple(pub(crate) Vec<Value>);

impl Tuple {
    /// Replaces each unchanged TOASTed value by the old row's value
    /// (complete under `REPLICA IDENTITY FULL`); false if one is missing.
    pub(crate) fn resolve_unchanged(&mut self, old: Option<&Tuple>) -> bool {
        for (i, value) in self.0.iter_mut().enumerate() {
            if *value == Value::Unchanged {
                match old.and_then(|o| o.0.get(i)) {
                    Some(v) if *v != Value::Unchanged => *value = v.clone(),
                    _ => return false,
                }
            }
        }
        true
    }
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// A relation's definition.
    Relation(Relation),
    /// A row inserted.
    Insert {
        /// The relation.
        relation: u32,
        /// The new row.
        new: Tuple,
    },
    /// A row updated: the old row when the replica identity sends it.
    Update {
        /// The relation.
        relation: u32,
        /// The old row (`O`: every column) or key (`K`), if sent.
        old: Option<Tuple>,
        /// The new row.
        new: Tuple,
    },
    /// A row deleted.
    Delete {
        /// The relation.
        relation: u32,
        /// The old row (`O`) or its key (`K`).
        old: Tuple,
    },
    /// Anything else (truncate, type, origin): nothing to capture.
    Other(u8),
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Error> {
        if self.bytes.len() < n {
            return Err(Error::Protocol(format!("pgoutput: truncated {what}")));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &str) -> Result<u8, Error> {
        Ok(self.take(1, what)?[0])
    }

    fn i16(&mut self, what: &str) -> Result<i16, Error> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, what: &str) -> Result<i32, Error> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, what: &str) -> Result<String, Error> {
        let end = self
            .bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| Error::Protocol(format!("pgoutput: {what} is not terminated")))?;
        let text = std::str::from_utf8(&self.bytes[..end])
            .map_err(|_| Error::Protocol(format!("pgoutput: {what} is not UTF-8")))?
            .to_string();
        self.bytes = &self.bytes[end + 1..];
        Ok(text)
    }

    fn tuple(&mut self) -> Result<Tuple, Error> {
        let n = self.i16("tuple column count")?;
        let mut values = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        for _ in 0..n {
            values.push(match self.u8("tuple column kind")? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                b't' => {
                    let len = usize::try_from(self.i32("value length")?)
                        .map_err(|_| Error::Protocol("pgoutput: negative value length".into()))?;
                    let bytes = self.take(len, "value")?;
                    Value::Text(
                        std::str::from_utf8(bytes)
                            .map_err(|_| {
                                Error::Protocol("pgoutput: a text value is not UTF-8".into())
                            })?
                            .to_string(),
                    )
                }
                other => {
                    return Err(Error::Protocol(format!(
                        "pgoutput: column kind `{}` (a binary stream?)",
                        other as char
                    )));
                }
            });
        }
        Ok(Tuple(values))
    }
}

/// Decodes one message.
pub(crate) fn decode(bytes: &[u8]) -> Result<Message, Error> {
    let mut r = Reader { bytes };
    let tag = r.u8("message tag")?;
    Ok(match tag {
        b'R' => {
            let id = r.u32("relation id")?;
            let namespace = r.string("namespace")?;
            let name = r.string("relation name")?;
            let replica_identity = r.u8("replica identity")?;
            let n = r.i16("column count")?;
            let mut columns = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
            for _ in 0..n {
                let _flags = r.u8("column flags")?;
                columns.push(Column {
                    name: r.string("column name")?,
                    type_oid: r.u32("column type")?,
                    type_modifier: r.i32("column type modifier")?,
                });
            }
            let namespace = if namespace.is_empty() {
                "pg_catalog".to_string()
            } else {
                namespace
            };
            Message::Relation(Relation {
                id,
                qualified_name: format!("{namespace}.{name}"),
                replica_identity,
                columns,
            })
        }
        b'I' => {
            let relation = r.u32("relation id")?;
            expect(&mut r, b'N')?;
            Message::Insert {
                relation,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let relation = r.u32("relation id")?;
            let mut old = None;
            let mut kind = r.u8("update tuple kind")?;
            if kind == b'K' || kind == b'O' {
                old = Some(r.tuple()?);
                kind = r.u8("update tuple kind")?;
            }
            if kind != b'N' {
                return Err(Error::Protocol(format!(
                    "pgoutput: update without a new row (`{}`)",
                    kind as char
                )));
            }
            Message::Update {
                relation,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let relation = r.u32("relation id")?;
            let kind = r.u8("delete tuple kind")?;
            if kind != b'K' && kind != b'O' {
                return Err(Error::Protocol(format!(
                    "pgoutput: delete without an old row (`{}`)",
                    kind as char
                )));
            }
            Message::Delete {
                relation,
                old: r.tuple()?,
            }
        }
        other => Message::Other(other),
    })
}

fn expect(r: &mut Reader<'_>, kind: u8) -> Result<(), Error> {
    let got = r.u8("tuple kind")?;
    if got == kind {
        Ok(())
    } else {
        Err(Error::Protocol(format!(
            "pgoutput: expected tuple `{}`, got `{}`",
            kind as char, got as char
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cstr(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    fn tuple(out: &mut Vec<u8>, values: &[Option<Option<&str>>]) {
        out.extend_from_slice(&(values.len() as i16).to_be_bytes());
        for v in values {
            match v {
                None => out.push(b'u'),
                Some(None) => out.push(b'n'),
                Some(Some(text)) => {
                    out.push(b't');
                    out.extend_from_slice(&(text.len() as i32).to_be_bytes());
                    out.extend_from_slice(text.as_bytes());
                }
            }
        }
    }

    #[test]
    fn relation() {
        let mut m = vec![b'R'];
        m.extend_from_slice(&16_385u32.to_be_bytes());
        cstr(&mut m, "public");
        cstr(&mut m, "runs");
        m.push(b'f');
        m.extend_from_slice(&2i16.to_be_bytes());
        m.push(1);
        cstr(&mut m, "id");
        m.extend_from_slice(&23u32.to_be_bytes());
        m.extend_from_slice(&(-1i32).to_be_bytes());
        m.push(0);
        cstr(&mut m, "title");
        m.extend_from_slice(&1043u32.to_be_bytes());
        m.extend_from_slice(&68i32.to_be_bytes());
        let Message::Relation(rel) = decode(&m).unwrap() else {
            panic!("not a relation")
        };
        assert_eq!(rel.id, 16_385);
        assert_eq!(rel.qualified_name, "public.runs");
        assert_eq!(rel.replica_identity, b'f');
        assert_eq!(rel.columns[1].name, "title");
        assert_eq!(rel.columns[1].type_oid, 1043);
        assert_eq!(rel.columns[1].type_modifier, 68);
        // Every truncation is an error, never a panic.
        for cut in 0..m.len() {
            assert!(decode(&m[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn update_with_old_row_null_and_unchanged_toast() {
        let mut m = vec![b'U'];
        m.extend_from_slice(&7u32.to_be_bytes());
        m.push(b'O');
        tuple(&mut m, &[Some(Some("1")), Some(Some("big")), Some(None)]);
        m.push(b'N');
        tuple(&mut m, &[Some(Some("1")), None, Some(Some("é"))]);
        let Message::Update {
            relation,
            old,
            mut new,
        } = decode(&m).unwrap()
        else {
            panic!("not an update")
        };
        assert_eq!(relation, 7);
        assert_eq!(new.0[1], Value::Unchanged);
        assert!(new.resolve_unchanged(old.as_ref()));
        assert_eq!(
            new.0,
            vec![
                Value::Text("1".into()),
                Value::Text("big".into()),
                Value::Text("é".into())
            ]
        );
        // Without the old row an unchanged value cannot be resolved.
        let mut lone = Tuple(vec![Value::Unchanged]);
        assert!(!lone.resolve_unchanged(None));
    }

    #[test]
    fn insert_delete_and_others() {
        let mut m = vec![b'I'];
        m.extend_from_slice(&7u32.to_be_bytes());
        m.push(b'N');
        tuple(&mut m, &[Some(Some("1"))]);
        assert!(matches!(
            decode(&m).unwrap(),
            Message::Insert { relation: 7, .. }
        ));
        let mut d = vec![b'D'];
        d.extend_from_slice(&7u32.to_be_bytes());
        d.push(b'K');
        tuple(&mut d, &[Some(Some("1"))]);
        assert!(matches!(
            decode(&d).unwrap(),
            Message::Delete { relation: 7, .. }
        ));
        let mut bad = vec![b'D'];
        bad.extend_from_slice(&7u32.to_be_bytes());
        bad.push(b'N');
        assert!(decode(&bad).is_err());
        assert_eq!(decode(b"T\0\0\0\0").unwrap(), Message::Other(b'T'));
        let mut binary = vec![b'I'];
        binary.extend_from_slice(&7u32.to_be_bytes());
        binary.extend_from_slice(&[b'N', 0, 1, b'b', 0, 0, 0, 0]);
        assert!(decode(&binary).is_err());
    }
}
