//! The mixing predictor's named presets.

use crate::format::profile_mask;

/// Named presets of the mixing predictor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Profile {
    /// Orders 1-4 and 6, word and column contexts, the long copy: the quickest.
    Fast,
    /// All context (orders, text, sparse), copy and retrieval experts; no neural model.
    #[default]
    Default,
    /// Everything, the neural expert included: the smallest output, the slowest.
    Max,
}

impl Profile {
    /// The experts of this profile, as an `expert_mask`.
    pub fn experts(self) -> u32 {
        match self {
            Profile::Fast => profile_mask::FAST,
            Profile::Default => profile_mask::DEFAULT,
            Profile::Max => profile_mask::MAX,
        }
    }

    /// The profile whose expert set is `mask`, if any (`fast`'s set before format version
    /// 9 included).
    pub fn from_experts(mask: u32) -> Option<Profile> {
        if mask == profile_mask::FAST_BEFORE_9 {
            return Some(Profile::Fast);
        }
        [Profile::Fast, Profile::Default, Profile::Max]
            .into_iter()
            .find(|p| p.experts() == mask)
    }

    /// The profile's name as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Fast => "fast",
            Profile::Default => "default",
            Profile::Max => "max",
        }
    }
}
