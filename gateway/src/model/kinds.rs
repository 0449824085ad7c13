//! The settings and states that are one of a few names.

use super::text::text_enum;

text_enum! {
    /// How failed deliveries are tried again.
    RetryPolicy {
        /// Backoff doubling from 5 s with jitter (8 attempts over about a day by default).
        Exponential => "exponential",
        /// A fixed interval (Inspectorio: 3 more tries, 60 s apart).
        Fixed => "fixed",
    }
}

text_enum! {
    /// What happens to a delivery when the receiver's plugin fails.
    PluginFailureMode {
        /// The delivery ends with status `plugin_error`.
        Fail => "fail",
        /// The original, untransformed body is sent.
        DeliverOriginal => "deliver_original",
    }
}

text_enum! {
    /// Where a delivery stands.
    DeliveryStatus {
        /// Waiting for its next attempt (or leased and in flight).
        Pending => "pending",
        /// The receiver answered with its expected status.
        Succeeded => "succeeded",
        /// Every attempt failed, or the failure is permanent.
        Failed => "failed",
        /// A plugin dropped it.
        Filtered => "filtered",
        /// A plugin failed and the receiver asked for that to be final.
        PluginError => "plugin_error",
    }
}

impl RetryPolicy {
    /// The attempts a new receiver with this policy gets: 8 over about a
    /// day (exponential), or ION's Inspectorio-style 1 + 3 (fixed).
    pub(crate) fn default_attempts(self) -> i32 {
        match self {
            RetryPolicy::Exponential => 8,
            RetryPolicy::Fixed => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_and_unknown_names_say_what_is_expected() {
        for s in DeliveryStatus::ALL {
            assert_eq!(s.as_str().parse::<DeliveryStatus>(), Ok(*s));
        }
        for p in RetryPolicy::ALL {
            assert_eq!(p.to_string().parse::<RetryPolicy>(), Ok(*p));
        }
        for m in PluginFailureMode::ALL {
            assert_eq!(m.as_str().parse::<PluginFailureMode>(), Ok(*m));
        }
        let err = "sent".parse::<DeliveryStatus>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`sent` is not a DeliveryStatus (one of pending, succeeded, failed, filtered, plugin_error)"
        );
    }
}
