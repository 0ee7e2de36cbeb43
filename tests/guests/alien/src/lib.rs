//! A valid WebAssembly component that is not a PBX plugin: the host must
//! refuse it as exporting the wrong world.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    inline: "
        package test:alien@1.0.0;
        world alien {
            export greet: func(name: string) -> string;
        }
    ",
});

#[allow(dead_code)]
struct Alien;

impl Guest for Alien {
    fn greet(name: String) -> String {
        format!("hello {name}")
    }
}

#[cfg(target_family = "wasm")]
export!(Alien);
