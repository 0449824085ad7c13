//! Which signatures a receiver gets: a set of [`Scheme`]s, stored as a
//! comma-separated list (`ion,standard`) and decoded once, here.

use changewire_core::Scheme;

/// The signature schemes of one receiver (never empty): one bit per
/// scheme, by its place in [`Scheme::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignatureSchemes(u32);

fn bit(scheme: Scheme) -> u32 {
    let index = Scheme::ALL.iter().position(|s| *s == scheme).unwrap_or(0);
    1 << index
}

impl Default for SignatureSchemes {
    /// ION's own `x-ion-signature`, as ION sends.
    fn default() -> Self {
        SignatureSchemes(bit(Scheme::Ion))
    }
}

impl SignatureSchemes {
    /// The set of `schemes`; None when it is empty.
    pub(crate) fn of(schemes: impl IntoIterator<Item = Scheme>) -> Option<Self> {
        let set = schemes.into_iter().fold(0, |set, s| set | bit(s));
        (set != 0).then_some(SignatureSchemes(set))
    }

    /// Whether `scheme` is in the set.
    pub(crate) fn contains(self, scheme: Scheme) -> bool {
        self.0 & bit(scheme) != 0
    }

    /// The schemes, in `Scheme::ALL`'s order.
    pub(crate) fn iter(self) -> impl Iterator<Item = Scheme> {
        Scheme::ALL
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }

    /// The stored form: names joined by commas.
    pub(crate) fn to_stored(self) -> String {
        self.iter()
            .map(Scheme::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// From the stored form; unknown names are refused.
    pub(crate) fn from_stored(text: &str) -> Result<Self, changewire_core::UnknownScheme> {
        let mut schemes = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            schemes.push(name.parse::<Scheme>()?);
        }
        Ok(Self::of(schemes).unwrap_or_default())
    }
}

impl<DB: sqlx::Database> sqlx::Type<DB> for SignatureSchemes
where
    str: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for SignatureSchemes
where
    String: sqlx::Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <String as sqlx::Encode<'q, DB>>::encode(self.to_stored(), buf)
    }
}

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for SignatureSchemes
where
    &'r str: sqlx::Decode<'r, DB>,
{
    fn decode(
        value: <DB as sqlx::Database>::ValueRef<'r>,
    ) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<'r, DB>>::decode(value)?;
        Ok(Self::from_stored(text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_list_round_trips_without_repeats() {
        let both = SignatureSchemes::of([Scheme::Standard, Scheme::Ion, Scheme::Ion]).unwrap();
        assert_eq!(both.to_stored(), "ion,standard");
        assert_eq!(
            SignatureSchemes::from_stored("ion, standard").unwrap(),
            both
        );
        assert_eq!(
            SignatureSchemes::from_stored("ion").unwrap(),
            SignatureSchemes::default()
        );
        assert!(SignatureSchemes::of([]).is_none());
        assert!(SignatureSchemes::from_stored("ion,hmac").is_err());
    }
}
