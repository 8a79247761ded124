pub mod jwt;
pub mod token_flag;
