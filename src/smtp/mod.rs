//! SMTP on the wire: reply framing and parsing, EHLO capabilities, and the client connection.

pub mod conn;
pub mod ehlo;
pub mod reply;
