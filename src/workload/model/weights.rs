//! Reading and writing the network's weights with burn's record system (burnpack files).

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor};

use super::ModelError;
use super::unet::Denoiser;

fn weights_error(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Weights {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Loads the network from `path` onto `device`.
///
/// Every failure names the path: a missing file (with the command that makes one), a file
/// that is not burnpack (burn-pack checks the magic number, version and that every tensor's
/// byte range lies inside the file: `burn-pack-0.22.1/src/reader.rs`), a record whose tensor
/// names or shapes differ from this network (`ModuleRecord::apply` refuses missing and unused
/// tensors and shape mismatches: `burn-core-0.22.1/src/store/mod.rs`), and weights that are
/// not finite. burnpack has no checksum, so a flipped bit that leaves a finite number goes
/// unnoticed; everything that can make the output NaN does not.
pub fn load(path: &Path, device: &Device) -> Result<Denoiser, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (make it with `gracetrace train`)"
        } else {
            ""
        };
        weights_error(path, format!("{e}{hint}"))
    })?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| weights_error(path, format!("not a readable burnpack file: {e}")))?;
    let net = Denoiser::new(device)
        .try_load_record(record)
        .map_err(|e| weights_error(path, format!("does not fit this network: {e}")))?;
    let mut check = FiniteCheck::default();
    net.visit(&mut check);
    if let Some(error) = check.error {
        return Err(weights_error(path, error));
    }
    if !check.bad.is_empty() {
        return Err(weights_error(
            path,
            format!("non-finite values in {}", check.bad.join(", ")),
        ));
    }
    Ok(net)
}

/// Writes the network's weights to `path` (burnpack), creating the folder.
pub fn save(net: Denoiser, path: &Path) -> Result<(), ModelError> {
    let write_error = |reason: String| ModelError::Write {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| write_error(e.to_string()))?;
    }
    let bytes = net
        .into_record()
        .into_bytes()
        .map_err(|e| write_error(e.to_string()))?;
    std::fs::write(path, &bytes[..]).map_err(|e| write_error(e.to_string()))
}

/// Collects the paths of parameters holding NaN or infinity.
#[derive(Default)]
struct FiniteCheck {
    bad: Vec<String>,
    error: Option<String>,
}

impl ModuleVisitor for FiniteCheck {
    // `visit_float` is the hook every parameter goes through (burn-core 0.22.1
    // `module/base.rs`); the tensor's shape names it in the message, as the path is not
    // passed here.
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let shape = tensor.dims();
        match tensor.try_into_vec_as::<f32>() {
            Ok(values) if values.iter().all(|v| v.is_finite()) => {}
            Ok(_) => self.bad.push(format!("a {shape:?} tensor")),
            Err(e) => {
                self.error.get_or_insert(e.to_string());
            }
        }
    }
}
