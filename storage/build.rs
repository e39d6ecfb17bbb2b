// `sqlx::migrate!` embeds the files of ../migrations/{sqlite,postgres} at
// compile time; a new file there must trigger a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=../migrations/sqlite");
    println!("cargo:rerun-if-changed=../migrations/postgres");
}
