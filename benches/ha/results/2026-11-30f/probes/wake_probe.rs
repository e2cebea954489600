//! What one thread wake-up costs on this machine: two threads hand a value
//! back and forth over a rendezvous-sized channel (futex wake-ups), 5,000
//! round trips with no pause and 5,000 after 200 µs of spinning each.
//! `rustc -O wake_probe.rs && ./wake_probe` (BENCHMARKS.md, eighth round).
use std::sync::mpsc::sync_channel;
use std::time::Instant;
fn main() {
    let (atx, arx) = sync_channel::<u64>(1);
    let (btx, brx) = sync_channel::<u64>(1);
    let h = std::thread::spawn(move || { while let Ok(v) = arx.recv() { if btx.send(v).is_err() {break;} } });
    let n = 20000;
    // sleep between to let the thread park deeply
    for &gap in &[0u64, 200] {
        let mut lat = Vec::new();
        for i in 0..n/4 {
            if gap > 0 { let t = Instant::now(); while t.elapsed().as_micros() < gap as u128 { std::hint::spin_loop(); } }
            let t = Instant::now();
            atx.send(i).unwrap(); brx.recv().unwrap();
            lat.push(t.elapsed().as_nanos() as u64);
        }
        lat.sort();
        println!("gap {gap}us: round trip p50 {}us p90 {}us p99 {}us", lat[lat.len()/2]/1000, lat[lat.len()*9/10]/1000, lat[lat.len()*99/100]/1000);
    }
    drop(atx); h.join().unwrap();
}
