pub mod token_flag;
