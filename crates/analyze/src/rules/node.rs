//! STUB: rules being written.

use crate::rule::Rule;

pub(crate) const RULES: &[Rule] = &[];
