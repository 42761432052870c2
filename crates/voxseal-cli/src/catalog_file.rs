//! The catalogue file: one row per sample, as Parquet, in the schema the Python package writes
//! (`voxseal/catalog.py`), so either tool reads and rewrites what the other made. Every column is
//! nullable, as pyarrow writes them; pages are Snappy-compressed, pyarrow's default.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DataType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use parquet::record::Field;

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnType {
    /// UTF-8 string.
    Str,
    /// 64-bit float.
    F64,
    /// 64-bit integer.
    I64,
    /// Boolean.
    Bool,
    /// List of strings.
    StrList,
}

/// The columns, in order (the same as `voxseal/catalog.py`'s `COLUMNS`).
pub const COLUMNS: [(&str, ColumnType); 21] = {
    use ColumnType::*;
    [
        ("sample", Str),
        ("contractor", Str),
        ("project", Str),
        ("prompt", Str),
        ("supersedes", Str),
        ("recorded_at", Str),
        ("sealed_at", Str),
        ("duration_s", F64),
        ("take_duration_s", F64),
        ("source_sample_rate", I64),
        ("quality", Str),
        ("accepted_despite", StrList),
        ("consent_sha256", Str),
        ("config_sha256", Str),
        ("features_only", Bool),
        ("manifest_key", Str),
        ("features_key", Str),
        ("features_size", I64),
        ("raw_key", Str),
        ("raw_size", I64),
        ("app_version", Str),
    ]
};

/// The index of the `contractor` column.
const CONTRACTOR: usize = 1;

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Missing.
    Null,
    /// A string.
    Str(String),
    /// A float.
    F64(f64),
    /// An integer.
    I64(i64),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    StrList(Vec<String>),
}

/// A row: one value per column of [`COLUMNS`].
pub type Row = Vec<Value>;

fn schema() -> parquet::schema::types::TypePtr {
    let mut text = String::from("message schema {\n");
    for (name, ty) in COLUMNS {
        text.push_str(&match ty {
            ColumnType::Str => format!("OPTIONAL BYTE_ARRAY {name} (UTF8);\n"),
            ColumnType::F64 => format!("OPTIONAL DOUBLE {name};\n"),
            ColumnType::I64 => format!("OPTIONAL INT64 {name};\n"),
            ColumnType::Bool => format!("OPTIONAL BOOLEAN {name};\n"),
            ColumnType::StrList => format!(
                "OPTIONAL group {name} (LIST) {{ REPEATED group list {{ OPTIONAL BYTE_ARRAY element (UTF8); }} }}\n"
            ),
        });
    }
    text.push('}');
    Arc::new(
        parquet::schema::parser::parse_message_type(&text).expect("the catalogue schema parses"),
    )
}

/// Writes column `i` of `rows`: definition level 1 and the value where `get` finds one, level 0
/// (null) where it does not.
fn write_present<T: DataType>(
    column: &mut SerializedColumnWriter<'_>,
    rows: &[Row],
    i: usize,
    get: impl Fn(&Value) -> Option<T::T>,
) -> Result<()> {
    let mut defs = Vec::with_capacity(rows.len());
    let mut values = Vec::with_capacity(rows.len());
    for row in rows {
        match get(&row[i]) {
            Some(v) => {
                defs.push(1);
                values.push(v);
            }
            None => defs.push(0),
        }
    }
    column
        .typed::<T>()
        .write_batch(&values, Some(&defs), None)?;
    Ok(())
}

/// Repetition and definition levels and values of a list column: a null list is def 0, an empty
/// one def 1, an element def 3; the first entry of each row has rep 0, the others rep 1.
fn list_levels(rows: &[Row], i: usize) -> (Vec<i16>, Vec<i16>, Vec<ByteArray>) {
    let (mut defs, mut reps, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        match &row[i] {
            Value::StrList(items) if !items.is_empty() => {
                for (n, item) in items.iter().enumerate() {
                    reps.push(i16::from(n > 0));
                    defs.push(3);
                    values.push(ByteArray::from(item.as_str()));
                }
            }
            Value::StrList(_) => {
                reps.push(0);
                defs.push(1);
            }
            _ => {
                reps.push(0);
                defs.push(0);
            }
        }
    }
    (defs, reps, values)
}

/// The catalogue of `rows` as Parquet bytes. Each row must have one value per column.
pub fn to_parquet(rows: &[Row]) -> Result<Vec<u8>> {
    assert!(
        rows.iter().all(|r| r.len() == COLUMNS.len()),
        "a row per column"
    );
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema(), Arc::new(props))?;
    let mut group = writer.next_row_group()?;
    let mut i = 0;
    while let Some(mut column) = group.next_column()? {
        match COLUMNS[i].1 {
            ColumnType::Str => write_present::<ByteArrayType>(&mut column, rows, i, |v| match v {
                Value::Str(s) => Some(ByteArray::from(s.as_str())),
                _ => None,
            })?,
            ColumnType::F64 => write_present::<DoubleType>(&mut column, rows, i, |v| match v {
                Value::F64(x) => Some(*x),
                _ => None,
            })?,
            ColumnType::I64 => write_present::<Int64Type>(&mut column, rows, i, |v| match v {
                Value::I64(x) => Some(*x),
                _ => None,
            })?,
            ColumnType::Bool => write_present::<BoolType>(&mut column, rows, i, |v| match v {
                Value::Bool(x) => Some(*x),
                _ => None,
            })?,
            ColumnType::StrList => {
                let (defs, reps, v) = list_levels(rows, i);
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&v, Some(&defs), Some(&reps))?;
            }
        }
        column.close()?;
        i += 1;
    }
    group.close()?;
    writer.close()?;
    Ok(out)
}

/// Writes the catalogue to `path` atomically (temp file, fsync, rename).
pub fn write(path: &Path, rows: &[Row]) -> Result<()> {
    let bytes = to_parquet(rows)?;
    voxseal_core::store::fsutil::write_atomic(path, &bytes, false)
        .with_context(|| format!("writing {}", path.display()))
}

/// A Parquet field as a value of column `name` of type `ty`.
fn value_of(name: &str, ty: ColumnType, field: &Field) -> Result<Value> {
    Ok(match (ty, field) {
        (_, Field::Null) => Value::Null,
        (ColumnType::Str, Field::Str(s)) => Value::Str(s.clone()),
        (ColumnType::F64, Field::Double(x)) => Value::F64(*x),
        (ColumnType::I64, Field::Long(x)) => Value::I64(*x),
        (ColumnType::Bool, Field::Bool(x)) => Value::Bool(*x),
        (ColumnType::StrList, Field::ListInternal(list)) => Value::StrList(
            list.elements()
                .iter()
                .map(|e| match e {
                    Field::Str(s) => Ok(s.clone()),
                    other => bail!("column {name}: a list element {other:?}, not a string"),
                })
                .collect::<Result<_>>()?,
        ),
        (_, other) => bail!("column {name} holds {other:?}, not {ty:?}"),
    })
}

/// The rows of a catalogue file (made by `voxseal catalog` or `voxseal-data catalog`). A file
/// whose columns are not the catalogue's is refused.
pub fn read(path: &Path) -> Result<Vec<Row>> {
    let not_catalogue = || format!("{} is not a Voxseal catalogue", path.display());
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = SerializedFileReader::new(file).with_context(not_catalogue)?;
    let names: Vec<String> = (reader
        .metadata()
        .file_metadata()
        .schema()
        .get_fields()
        .iter())
    .map(|f| f.name().to_owned())
    .collect();
    let expected: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
    if names != expected {
        bail!("{}: its columns are {names:?}", not_catalogue());
    }
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None).with_context(not_catalogue)? {
        let row = row.with_context(not_catalogue)?;
        let cells = row.get_column_iter().zip(COLUMNS);
        rows.push(
            cells
                .map(|((_, field), (name, ty))| value_of(name, ty, field))
                .collect::<Result<Row>>()
                .with_context(not_catalogue)?,
        );
    }
    Ok(rows)
}

/// The rows of `rows` that are not `contractor`'s, and how many were.
pub fn without_contractor(rows: Vec<Row>, contractor: &str) -> (Vec<Row>, usize) {
    let before = rows.len();
    let kept: Vec<Row> = rows
        .into_iter()
        .filter(|r| r[CONTRACTOR] != Value::Str(contractor.to_owned()))
        .collect();
    let removed = before - kept.len();
    (kept, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sample: &str, contractor: &str, accepted: Option<Vec<&str>>) -> Row {
        let mut r = vec![Value::Null; COLUMNS.len()];
        r[0] = Value::Str(sample.into());
        r[CONTRACTOR] = Value::Str(contractor.into());
        r[7] = Value::F64(2.5);
        r[9] = Value::I64(48_000);
        r[11] = accepted.map_or(Value::Null, |a| {
            Value::StrList(a.into_iter().map(String::from).collect())
        });
        r[14] = Value::Bool(true);
        r
    }

    #[test]
    fn rows_round_trip_with_null_empty_and_multi_element_lists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.parquet");
        let rows = vec![
            row("s1", "alice-01", None),
            row("s2", "alice-01", Some(vec![])),
            row("s3", "bob-02", Some(vec!["clipping", "too_quiet"])),
            row("s4", "bob-02", Some(vec!["noise"])),
        ];
        write(&path, &rows).unwrap();
        assert_eq!(read(&path).unwrap(), rows);
    }

    #[test]
    fn removing_a_contractor_keeps_every_other_row_unchanged() {
        let rows = vec![
            row("s1", "alice-01", None),
            row("s2", "alice-012", Some(vec!["x"])),
            row("s3", "alice-01", Some(vec![])),
        ];
        let (kept, removed) = without_contractor(rows.clone(), "alice-01");
        assert_eq!(removed, 2);
        assert_eq!(kept, vec![rows[1].clone()]);
    }

    #[test]
    fn a_file_that_is_not_a_catalogue_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        std::fs::write(&path, b"PAR1 not really").unwrap();
        let e = read(&path).unwrap_err();
        assert!(
            format!("{e:#}").contains("is not a Voxseal catalogue"),
            "{e:#}"
        );
        let e = read(&dir.path().join("missing.parquet")).unwrap_err();
        assert!(e.to_string().contains("cannot open"), "{e:#}");
    }
}
