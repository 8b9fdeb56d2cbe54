//! The file schema of DESIGN §2 as serde types.
