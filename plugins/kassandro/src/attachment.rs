//! Receipt attachments: the document's file rules (≤ 5 MB, listed extensions), checked before
//! anything is sent, and the `multipart/form-data` body of `POST /receiptattachment`.

use base64::Engine;

/// The largest file the API accepts (document: "Größe <= 5MB", read as 5 × 1024 × 1024 bytes).
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
/// The extensions the API accepts (document), compared case-insensitively.
pub const EXTENSIONS: &[&str] = &[
    "zip", "pdf", "txt", "csv", "xls", "xlsx", "doc", "docx", "png", "jpg", "jpeg",
];

/// A file ready to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentFile {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why a file cannot be uploaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    #[error("attachment {name}: {size} bytes is more than the 5 MB Kassandro accepts")]
    TooLarge { name: String, size: usize },
    #[error("attachment {name}: extension not accepted by Kassandro (allowed: {})", EXTENSIONS.join(", "))]
    Extension { name: String },
    #[error("attachment {name}: {reason}")]
    Unreadable { name: String, reason: String },
}

impl AttachmentFile {
    /// Checks the document's rules.
    pub fn check(&self) -> Result<(), AttachmentError> {
        let ext = self
            .name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase());
        if !ext.is_some_and(|e| EXTENSIONS.contains(&e.as_str())) {
            return Err(AttachmentError::Extension {
                name: self.name.clone(),
            });
        }
        if self.bytes.len() > MAX_BYTES {
            return Err(AttachmentError::TooLarge {
                name: self.name.clone(),
                size: self.bytes.len(),
            });
        }
        Ok(())
    }

    /// A file from base64 text.
    pub fn from_base64(
        name: &str,
        content_type: Option<&str>,
        b64: &str,
    ) -> Result<Self, AttachmentError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| AttachmentError::Unreadable {
                name: name.into(),
                reason: format!("content is not base64: {e}"),
            })?;
        Ok(Self {
            name: name.into(),
            content_type: content_type.unwrap_or("application/octet-stream").into(),
            bytes,
        })
    }

    /// A file from a `data:<mime>;base64,<content>` URL; `None` for any other URL.
    pub fn from_data_url(name: &str, url: &str) -> Option<Result<Self, AttachmentError>> {
        let rest = url.strip_prefix("data:")?;
        let (meta, data) = rest.split_once(',')?;
        let Some(mime) = meta.strip_suffix(";base64") else {
            return Some(Err(AttachmentError::Unreadable {
                name: name.into(),
                reason: "only base64 data URLs are supported".into(),
            }));
        };
        Some(Self::from_base64(
            name,
            (!mime.is_empty()).then_some(mime),
            data,
        ))
    }

    /// The `multipart/form-data` body (parts `receiptId` and `file`) and its content type.
    pub fn multipart(&self, receipt_id: &str, boundary: &str) -> (Vec<u8>, String) {
        let mut body = Vec::with_capacity(self.bytes.len() + 512);
        let safe_name = self.name.replace(['"', '\r', '\n'], "_");
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"receiptId\"\r\n\r\n{receipt_id}\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{safe_name}\"\r\nContent-Type: {}\r\n\r\n",
                self.content_type
            )
            .as_bytes(),
        );
        body.extend_from_slice(&self.bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        (body, format!("multipart/form-data; boundary={boundary}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: usize) -> AttachmentFile {
        AttachmentFile {
            name: name.into(),
            content_type: "application/pdf".into(),
            bytes: vec![b'x'; size],
        }
    }

    #[test]
    fn enforces_size_and_extension() {
        assert!(file("bon.pdf", MAX_BYTES).check().is_ok());
        assert!(file("Bon.JPEG", 10).check().is_ok());
        assert!(matches!(
            file("bon.pdf", MAX_BYTES + 1).check(),
            Err(AttachmentError::TooLarge { .. })
        ));
        assert!(matches!(
            file("bon.exe", 10).check(),
            Err(AttachmentError::Extension { .. })
        ));
        assert!(matches!(
            file("noextension", 10).check(),
            Err(AttachmentError::Extension { .. })
        ));
    }

    #[test]
    fn reads_data_urls() {
        let f = AttachmentFile::from_data_url("a.txt", "data:text/plain;base64,aGFsbG8=")
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.bytes.as_slice(), f.content_type.as_str()),
            (&b"hallo"[..], "text/plain")
        );
        assert!(AttachmentFile::from_data_url("a.txt", "https://example.com/a.txt").is_none());
        assert!(
            AttachmentFile::from_data_url("a.txt", "data:text/plain,hallo")
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn builds_multipart_body() {
        let f = AttachmentFile {
            name: "a.txt".into(),
            content_type: "text/plain".into(),
            bytes: b"hallo".to_vec(),
        };
        let (body, ct) = f.multipart("R1", "BOUND");
        let text = String::from_utf8(body).unwrap();
        assert_eq!(ct, "multipart/form-data; boundary=BOUND");
        assert!(text.starts_with(
            "--BOUND\r\nContent-Disposition: form-data; name=\"receiptId\"\r\n\r\nR1\r\n"
        ));
        assert!(text.contains("name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhallo\r\n--BOUND--\r\n"));
    }
}
