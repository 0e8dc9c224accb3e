//! How an extract file is packaged (formats.md, "File types"): shared by the generator that
//! writes extracts and the ingest that reads them, so their manifests and receipts agree.

/// Container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// Comma-separated values.
    Csv,
    /// Excel workbook (first worksheet).
    Xlsx,
    /// Newline-delimited JSON.
    Ndjson,
}

/// Text encoding of a CSV or NDJSON file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TextEncoding {
    /// UTF-8 without a byte-order mark.
    #[serde(rename = "utf-8")]
    Utf8,
    /// UTF-8 with a byte-order mark.
    #[serde(rename = "utf-8-bom")]
    Utf8Bom,
    /// Windows-1252 (Excel "CSV" exports).
    #[serde(rename = "windows-1252")]
    Windows1252,
}
