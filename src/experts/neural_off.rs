//! The neural expert's types in a build without the `neural` feature (no tract): a model
//! can never be loaded, so no expert can be built. Streams that need one are refused with
//! `Unsupported`; every other predictor works as in a full build. Fuzz builds use this to
//! leave tract out where the neural expert is not the target.

use std::fmt;
use std::sync::Arc;

use super::{Predictor, Weights};
use crate::error::Error;

/// No value of this type exists: what holds one cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Never {}

fn unsupported() -> Error {
    Error::Unsupported {
        what: "the neural expert (this build has no `neural` feature)".into(),
    }
}

/// A neural byte model: cannot be loaded in this build.
#[derive(PartialEq, Eq)]
pub struct NeuralModel(Never);

impl fmt::Debug for NeuralModel {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {}
    }
}

impl NeuralModel {
    /// The embedded model: absent in this build.
    ///
    /// # Errors
    /// Always `Unsupported`.
    pub fn default_model() -> Result<Arc<NeuralModel>, Error> {
        Err(unsupported())
    }

    /// Loads a model from an ONNX file: not in this build.
    ///
    /// # Errors
    /// Always `Unsupported`.
    pub fn from_file(_path: impl AsRef<std::path::Path>) -> std::io::Result<NeuralModel> {
        Err(unsupported().into())
    }

    /// Loads a model from ONNX bytes: not in this build.
    ///
    /// # Errors
    /// Always `Unsupported`.
    pub fn from_bytes(_bytes: &[u8]) -> Result<NeuralModel, Error> {
        Err(unsupported())
    }

    /// Name stored in stream headers.
    pub fn name(&self) -> [u8; 16] {
        match self.0 {}
    }

    /// The name as text.
    pub fn name_str(&self) -> String {
        match self.0 {}
    }

    /// SHA-256 of the ONNX bytes.
    pub fn fingerprint(&self) -> [u8; 32] {
        match self.0 {}
    }

    /// Hidden size.
    pub fn hidden(&self) -> usize {
        match self.0 {}
    }
}

/// The neural expert: cannot be built in this build (it needs a model).
pub struct NeuralExpert(Never);

impl NeuralExpert {
    pub(crate) fn memory(_hidden: usize, _lanes: usize) -> u64 {
        0
    }

    /// An expert over `lanes` lanes: unreachable without a model.
    ///
    /// # Errors
    /// None: no model exists to call it with.
    pub fn new(model: Arc<NeuralModel>, _lanes: usize, _temperature: u16) -> Result<Self, Error> {
        match model.0 {}
    }

    /// As [`NeuralExpert::new`], for format `version`.
    ///
    /// # Errors
    /// None: no model exists to call it with.
    pub fn for_version(
        _version: u16,
        model: Arc<NeuralModel>,
        _lanes: usize,
        _temperature: u16,
    ) -> Result<Self, Error> {
        match model.0 {}
    }
}

impl Predictor for NeuralExpert {
    fn lanes(&self) -> usize {
        match self.0 {}
    }

    fn reset_lane(&mut self, _lane: usize, _block_len: usize) {
        match self.0 {}
    }

    fn predict(&mut self, _lanes: &[usize], _out: &mut [Weights]) -> Result<(), Error> {
        match self.0 {}
    }

    fn update(&mut self, _lanes: &[usize], _bytes: &[u8]) {
        match self.0 {}
    }
}
