//! Enumerations shown by a stable name. Each is declared once — a domain enum with its
//! `as_str()` and `ALL`, or an enum of this crate — and [`named_schema!`] gives it both its
//! wire form (the name as a JSON string) and its OpenAPI schema (a string enum of every name),
//! so the document lists exactly what the server sends.

use taquilla_domain::{ConflictReason, OrderState, PaymentMethod, PaymentState, RefundState, SaleStatus};

/// A value with a stable snake_case name, one of a closed set.
pub trait Named {
    /// The schema's name in the OpenAPI document.
    const SCHEMA: &'static str;
    fn name(&self) -> &'static str;
    /// Every name, in declaration order.
    fn names() -> Vec<&'static str>;
}

/// `Serialize` as the name and `ToSchema` as a string enum of every name, for a [`Named`] type.
macro_rules! named_schema {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::named::Named::name(self))
            }
        }

        impl $crate::json::WriteJson for $ty {
            fn write_json(&self, out: &mut Vec<u8>) {
                $crate::json::write_ascii($crate::named::Named::name(self), out);
            }
        }

        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(<$ty as $crate::named::Named>::names()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(<$ty as $crate::named::Named>::SCHEMA)
            }
        }
    };
}
pub(crate) use named_schema;

/// A domain enum with `as_str()` and `ALL`, shown by name through a local wrapper.
macro_rules! named_domain_enum {
    ($(#[$m:meta])* $wrapper:ident($inner:ty), $schema:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $wrapper(pub $inner);

        impl Named for $wrapper {
            const SCHEMA: &'static str = $schema;
            fn name(&self) -> &'static str {
                self.0.as_str()
            }
            fn names() -> Vec<&'static str> {
                <$inner>::ALL.iter().map(|v| v.as_str()).collect()
            }
        }

        named_schema!($wrapper);
    };
}

named_domain_enum!(
    /// The state of an order.
    OrderStateName(OrderState),
    "OrderState"
);
named_domain_enum!(
    /// The status of a sale: `draft → open ⇄ paused → closed`.
    SaleStatusName(SaleStatus),
    "SaleStatus"
);
named_domain_enum!(
    /// How an order is paid: a provider (`test`, `simulated`, `stripe`) or `offline` (the
    /// organiser confirms it).
    PaymentMethodName(PaymentMethod),
    "PaymentMethod"
);
named_domain_enum!(
    /// Where a payment attempt stands.
    PaymentStateName(PaymentState),
    "PaymentState"
);
named_domain_enum!(
    /// Where a refund stands.
    RefundStateName(RefundState),
    "RefundState"
);
named_domain_enum!(
    /// Why a command does not apply in the sale's current state: `details.reason` of a
    /// `409 conflict`.
    ConflictReasonName(ConflictReason),
    "ConflictReason"
);

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    use super::*;

    #[test]
    fn a_name_serializes_as_a_string_and_the_schema_lists_every_name() {
        let paid = OrderStateName(OrderState::Paid);
        assert_eq!(serde_json::to_string(&paid).unwrap(), "\"paid\"");
        let schema = serde_json::to_value(OrderStateName::schema()).unwrap();
        let names: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(names, OrderState::ALL.map(|s| s.as_str()));
    }
}
