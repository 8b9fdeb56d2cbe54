//! Reading a child's stdout or stderr as lines.
