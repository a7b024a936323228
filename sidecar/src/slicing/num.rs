//! The numeric types numpy gives an AnnData's columns and X, kept from the
//! source so that a slice holds what its source held: an int32 count stays
//! int32, a float32 score float32, integer counts in X stay integers.
//! Values travel as i64 (integers) or f64 (floats) in between: exact for
//! every type up to 32 bits; unsigned 64-bit values above 2^63 - 1 are
//! refused where they are read, and the values of a 64-bit integer matrix
//! (read as f64) are exact up to 2^53, far above any count.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, Int8Array,
    UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use hdf5_reader::Datatype;

/// A numeric element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Num {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

impl Num {
    /// From a zarr array's numpy kind code (`i4`, `u1`, `f8`: see
    /// `ZarrNode::kind`); None for other kinds (text, booleans).
    pub fn from_kind(kind: &str) -> Option<Num> {
        Some(match kind {
            "i1" => Num::I8,
            "i2" => Num::I16,
            "i4" => Num::I32,
            "i8" => Num::I64,
            "u1" => Num::U8,
            "u2" => Num::U16,
            "u4" => Num::U32,
            "u8" => Num::U64,
            "f4" => Num::F32,
            "f8" => Num::F64,
            _ => return None,
        })
    }

    /// From an HDF5 dataset's type; None for other types.
    pub fn from_hdf5(dtype: &Datatype) -> Option<Num> {
        Some(match dtype {
            Datatype::FixedPoint { size, signed, .. } => match (*size, *signed) {
                (1, true) => Num::I8,
                (2, true) => Num::I16,
                (4, true) => Num::I32,
                (8, true) => Num::I64,
                (1, false) => Num::U8,
                (2, false) => Num::U16,
                (4, false) => Num::U32,
                (8, false) => Num::U64,
                _ => return None,
            },
            Datatype::FloatingPoint { size: 4, .. } => Num::F32,
            Datatype::FloatingPoint { size: 8, .. } => Num::F64,
            _ => return None,
        })
    }

    pub fn is_float(self) -> bool {
        matches!(self, Num::F32 | Num::F64)
    }

    /// Whole numbers as an arrow array of this type (a float type takes
    /// them as floats).
    pub fn ints_to_arrow(self, v: &[Option<i64>]) -> ArrayRef {
        macro_rules! narrow {
            ($array:ty, $t:ty) => {
                Arc::new(<$array>::from_iter(v.iter().map(|x| x.map(|x| x as $t))))
            };
        }
        match self {
            Num::I8 => narrow!(Int8Array, i8),
            Num::I16 => narrow!(Int16Array, i16),
            Num::I32 => narrow!(Int32Array, i32),
            Num::I64 => Arc::new(Int64Array::from(v.to_vec())),
            Num::U8 => narrow!(UInt8Array, u8),
            Num::U16 => narrow!(UInt16Array, u16),
            Num::U32 => narrow!(UInt32Array, u32),
            Num::U64 => narrow!(UInt64Array, u64),
            Num::F32 => narrow!(Float32Array, f32),
            Num::F64 => narrow!(Float64Array, f64),
        }
    }

    /// Numbers as an arrow array of this type (an integer type takes them
    /// as whole numbers: X's values of an integer X are read as floats).
    pub fn floats_to_arrow(self, v: &[f64]) -> ArrayRef {
        match self {
            Num::F32 => Arc::new(Float32Array::from_iter_values(v.iter().map(|x| *x as f32))),
            Num::F64 => Arc::new(Float64Array::from(v.to_vec())),
            int => int.ints_to_arrow(&v.iter().map(|x| Some(*x as i64)).collect::<Vec<_>>()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::DataType;

    #[test]
    fn values_come_out_in_the_type_they_came_in() {
        assert_eq!(Num::from_kind("i4"), Some(Num::I32));
        assert_eq!(Num::from_kind("O"), None);
        let a = Num::I32.ints_to_arrow(&[Some(7), None]);
        assert_eq!(a.data_type(), &DataType::Int32);
        assert_eq!(a.null_count(), 1);
        let x = Num::U8.floats_to_arrow(&[3.0, 250.0]);
        assert_eq!(x.data_type(), &DataType::UInt8);
        let f = Num::F32.floats_to_arrow(&[0.25]);
        assert_eq!(f.data_type(), &DataType::Float32);
        assert!(Num::F32.is_float() && !Num::U64.is_float());
    }
}
