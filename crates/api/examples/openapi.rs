//! Prints the OpenAPI document (`cargo run -p taquilla-api --example openapi`).
fn main() {
    println!("{}", taquilla_api::openapi::document_json());
}
