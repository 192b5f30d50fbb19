fn main() {
    eprintln!("coracled: being written");
    std::process::exit(1);
}
