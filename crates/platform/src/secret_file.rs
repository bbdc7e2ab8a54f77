//! Reading a secret from a file (a mounted Secret, a compose secret): its content with the
//! surrounding whitespace trimmed. Errors name the path and the cause, never the content.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

/// Why a secret file gave no usable value. Its text never includes the file's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read {path}: {cause}")]
    Unreadable { path: String, cause: String },
    #[error("{path} is empty")]
    Empty { path: String },
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
}

/// The file's content, trimmed; an empty (or blank) file is an error.
pub fn read(path: &Path) -> Result<SecretString, SecretFileError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|err| SecretFileError::Unreadable {
        path: shown.clone(),
        cause: err.to_string(),
    })?;
    // Not echoing the content: a binary file is refused with its path only.
    let text = String::from_utf8(bytes).map_err(|_| SecretFileError::Invalid {
        path: shown.clone(),
        problem: "is not UTF-8 text".to_string(),
    })?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SecretFileError::Empty { path: shown });
    }
    Ok(SecretString::from(trimmed.to_string()))
}

/// Reads the file and turns its content into the value a service uses. `parse` explains a bad
/// content without quoting it.
pub fn load<T>(
    path: &Path,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<(SecretString, T), SecretFileError> {
    let raw = read(path)?;
    let value = parse(raw.expose_secret()).map_err(|problem| SecretFileError::Invalid {
        path: path.display().to_string(),
        problem,
    })?;
    Ok((raw, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_trimmed_and_errors_never_quote_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "  s3cret-value\n").unwrap();
        assert_eq!(read(&path).unwrap().expose_secret(), "s3cret-value");

        std::fs::write(&path, " \n\t").unwrap();
        assert!(matches!(read(&path), Err(SecretFileError::Empty { .. })));

        std::fs::write(&path, "s3cret-value").unwrap();
        let err = load(&path, |_| Err::<(), _>("is wrong".to_string())).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");

        let err = read(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().starts_with("cannot read "), "{err}");
    }
}
