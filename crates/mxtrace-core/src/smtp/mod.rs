//! SMTP on the wire: line and reply framing and parsing, EHLO capabilities, and the client
//! connection.

pub mod conn;
pub mod ehlo;
pub mod line;
pub mod reply;
