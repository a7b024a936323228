//! Values between arrow and Postgres' binary format: which Postgres column
//! an arrow type loads into (and back), and encoding values for binary COPY.

use std::error::Error;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, TimeUnit};
use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// How an arrow column goes into Postgres: the column type, and the arrow
/// type its values are cast to before they are written.
pub fn pg_type(t: &DataType) -> Option<(Type, &'static str, DataType)> {
    use DataType::*;
    Some(match t {
        Int8 | Int16 => (Type::INT2, "smallint", Int16),
        Int32 | UInt8 | UInt16 => (Type::INT4, "integer", Int32),
        Int64 | UInt32 | UInt64 => (Type::INT8, "bigint", Int64),
        Float16 | Float32 => (Type::FLOAT4, "real", Float32),
        Float64 => (Type::FLOAT8, "double precision", Float64),
        Boolean => (Type::BOOL, "boolean", Boolean),
        Utf8 | LargeUtf8 | Utf8View => (Type::TEXT, "text", Utf8),
        Dictionary(_, v) if matches!(v.as_ref(), Utf8 | LargeUtf8 | Utf8View) => {
            (Type::TEXT, "text", Utf8)
        }
        Binary | LargeBinary | BinaryView => (Type::BYTEA, "bytea", Binary),
        Date32 | Date64 => (Type::DATE, "date", Date32),
        Timestamp(_, None) => (
            Type::TIMESTAMP,
            "timestamp",
            Timestamp(TimeUnit::Microsecond, None),
        ),
        Timestamp(_, Some(tz)) => (
            Type::TIMESTAMPTZ,
            "timestamptz",
            Timestamp(TimeUnit::Microsecond, Some(tz.clone())),
        ),
        _ => return None,
    })
}

/// One value on its way into a binary COPY, borrowed from an arrow array.
#[derive(Debug)]
pub enum Val<'a> {
    Null,
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Text(&'a str),
    Bytes(&'a [u8]),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01.
    Micros(i64),
}

/// Postgres counts dates and timestamps from 2000-01-01.
const DAYS_1970_TO_2000: i32 = 10_957;
const MICROS_1970_TO_2000: i64 = 946_684_800_000_000;

impl ToSql for Val<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Val::Null => return Ok(IsNull::Yes),
            Val::I16(v) => out.put_i16(*v),
            Val::I32(v) => out.put_i32(*v),
            Val::I64(v) => out.put_i64(*v),
            Val::F32(v) => out.put_f32(*v),
            Val::F64(v) => out.put_f64(*v),
            Val::Bool(v) => out.put_u8(*v as u8),
            Val::Text(v) => out.put_slice(v.as_bytes()),
            Val::Bytes(v) => out.put_slice(v),
            Val::Date(d) => out.put_i32(d - DAYS_1970_TO_2000),
            Val::Micros(m) => out.put_i64(m - MICROS_1970_TO_2000),
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        // The column types come from pg_type above, which matches each variant.
        true
    }

    to_sql_checked!();
}

/// A batch column cast to its canonical arrow type, ready to hand out values.
pub enum Col {
    I16(Int16Array),
    I32(Int32Array),
    I64(Int64Array),
    F32(Float32Array),
    F64(Float64Array),
    Bool(BooleanArray),
    Text(StringArray),
    Bytes(BinaryArray),
    Date(Date32Array),
    Micros(TimestampMicrosecondArray),
}

impl Col {
    pub fn new(array: &ArrayRef, canonical: &DataType) -> anyhow::Result<Col> {
        let options = arrow::compute::CastOptions {
            safe: false,
            ..Default::default()
        };
        let cast = arrow::compute::cast_with_options(array, canonical, &options)?;
        let any = cast.as_any();
        macro_rules! take {
            ($variant:ident, $t:ty) => {
                Col::$variant(
                    any.downcast_ref::<$t>()
                        .expect("cast to the canonical type")
                        .clone(),
                )
            };
        }
        Ok(match canonical {
            DataType::Int16 => take!(I16, Int16Array),
            DataType::Int32 => take!(I32, Int32Array),
            DataType::Int64 => take!(I64, Int64Array),
            DataType::Float32 => take!(F32, Float32Array),
            DataType::Float64 => take!(F64, Float64Array),
            DataType::Boolean => take!(Bool, BooleanArray),
            DataType::Utf8 => take!(Text, StringArray),
            DataType::Binary => take!(Bytes, BinaryArray),
            DataType::Date32 => take!(Date, Date32Array),
            DataType::Timestamp(..) => take!(Micros, TimestampMicrosecondArray),
            other => anyhow::bail!("no canonical column for {other}"),
        })
    }

    pub fn get(&self, row: usize) -> Val<'_> {
        macro_rules! at {
            ($a:expr, $variant:ident) => {
                if $a.is_null(row) {
                    Val::Null
                } else {
                    Val::$variant($a.value(row))
                }
            };
        }
        match self {
            Col::I16(a) => at!(a, I16),
            Col::I32(a) => at!(a, I32),
            Col::I64(a) => at!(a, I64),
            Col::F32(a) => at!(a, F32),
            Col::F64(a) => at!(a, F64),
            Col::Bool(a) => at!(a, Bool),
            Col::Text(a) => at!(a, Text),
            Col::Bytes(a) => at!(a, Bytes),
            Col::Date(a) => at!(a, Date),
            Col::Micros(a) => at!(a, Micros),
        }
    }
}

/// A Postgres date or timestamp read in binary: days / microseconds since 2000-01-01.
struct PgInstant(i64);

impl<'a> tokio_postgres::types::FromSql<'a> for PgInstant {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(PgInstant(if *ty == Type::DATE {
            i32::from_be_bytes(raw.try_into()?) as i64
        } else {
            i64::from_be_bytes(raw.try_into()?)
        }))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::DATE | Type::TIMESTAMP | Type::TIMESTAMPTZ)
    }
}

/// The arrow type a query column is exported as.
pub fn arrow_type(t: &Type) -> Option<DataType> {
    Some(match *t {
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::BOOL => DataType::Boolean,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::JSONB => {
            DataType::Utf8
        }
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ => return None,
    })
}

/// Rows of a query result as one arrow column.
pub fn column(
    rows: &[tokio_postgres::Row],
    i: usize,
    pg: &Type,
    t: &DataType,
) -> anyhow::Result<ArrayRef> {
    use arrow::array::*;
    macro_rules! collect {
        ($rust:ty, $array:ty) => {{
            let v: Vec<Option<$rust>> = rows
                .iter()
                .map(|r| r.try_get(i))
                .collect::<Result<_, _>>()?;
            std::sync::Arc::new(<$array>::from(v)) as ArrayRef
        }};
    }
    Ok(match t {
        DataType::Int16 => collect!(i16, Int16Array),
        DataType::Int32 => collect!(i32, Int32Array),
        DataType::Int64 => collect!(i64, Int64Array),
        DataType::Float32 => collect!(f32, Float32Array),
        DataType::Float64 => collect!(f64, Float64Array),
        DataType::Boolean => collect!(bool, BooleanArray),
        DataType::Utf8 if matches!(*pg, Type::JSON | Type::JSONB) => {
            let v: Vec<Option<serde_json::Value>> = rows
                .iter()
                .map(|r| r.try_get(i))
                .collect::<Result<_, _>>()?;
            std::sync::Arc::new(StringArray::from(
                v.into_iter()
                    .map(|j| j.map(|j| j.to_string()))
                    .collect::<Vec<_>>(),
            ))
        }
        DataType::Utf8 => collect!(&str, StringArray),
        DataType::Binary => collect!(&[u8], BinaryArray),
        DataType::Date32 => {
            let v: Vec<Option<PgInstant>> = rows
                .iter()
                .map(|r| r.try_get(i))
                .collect::<Result<_, _>>()?;
            std::sync::Arc::new(Date32Array::from(
                v.into_iter()
                    .map(|d| d.map(|d| d.0 as i32 + DAYS_1970_TO_2000))
                    .collect::<Vec<_>>(),
            ))
        }
        DataType::Timestamp(_, tz) => {
            let v: Vec<Option<PgInstant>> = rows
                .iter()
                .map(|r| r.try_get(i))
                .collect::<Result<_, _>>()?;
            std::sync::Arc::new(
                TimestampMicrosecondArray::from(
                    v.into_iter()
                        .map(|d| d.map(|d| d.0 + MICROS_1970_TO_2000))
                        .collect::<Vec<_>>(),
                )
                .with_timezone_opt(tz.clone()),
            )
        }
        other => anyhow::bail!("no export for {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn arrow_types_have_postgres_columns() {
        assert_eq!(pg_type(&DataType::Int64).unwrap().1, "bigint");
        assert_eq!(pg_type(&DataType::UInt8).unwrap().1, "integer");
        assert_eq!(
            pg_type(&DataType::Dictionary(
                Box::new(DataType::Int8),
                Box::new(DataType::Utf8)
            ))
            .unwrap()
            .1,
            "text"
        );
        assert_eq!(
            pg_type(&DataType::Timestamp(
                TimeUnit::Nanosecond,
                Some("UTC".into())
            ))
            .unwrap()
            .1,
            "timestamptz"
        );
        assert!(
            pg_type(&DataType::List(Arc::new(arrow::datatypes::Field::new(
                "x",
                DataType::Int32,
                true
            ))))
            .is_none()
        );
    }

    #[test]
    fn dates_and_times_count_from_2000() {
        let mut out = BytesMut::new();
        Val::Date(DAYS_1970_TO_2000)
            .to_sql(&Type::DATE, &mut out)
            .unwrap();
        assert_eq!(&out[..], &0i32.to_be_bytes());
        let mut out = BytesMut::new();
        Val::Micros(MICROS_1970_TO_2000 + 1)
            .to_sql(&Type::TIMESTAMP, &mut out)
            .unwrap();
        assert_eq!(&out[..], &1i64.to_be_bytes());
    }
}
