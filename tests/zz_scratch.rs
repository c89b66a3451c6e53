mod common;
use fivewatch::config::Config;
use fivewatch::decode::{Layer, Reason};
use fivewatch::pipeline::{GTPU_MESSAGES, TRANSPORTS};
#[test]
fn dump() {
    for name in common::captures_with_expected() {
        let r = common::run_engine(&Config::default(), &common::capture(&name));
        let s = &r.stats;
        let e = common::expected(&name).unwrap();
        let mut errs = vec![];
        for l in Layer::ALL {
            for rr in Reason::ALL {
                let n = s.decode_error(l, rr);
                if n > 0 {
                    errs.push(format!("{}:{}={}", l.as_str(), rr.as_str(), n));
                }
            }
        }
        let tr: Vec<String> = TRANSPORTS
            .iter()
            .zip(s.transports.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| format!("{t}={n}"))
            .collect();
        let g: Vec<String> = GTPU_MESSAGES
            .iter()
            .zip(s.gtpu.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| format!("{t}={n}"))
            .collect();
        println!(
            "{name}\n  FW   frames={} bytes={} v4={} v6={} nonip={} tr={:?} gtpu={:?} errs={:?} alerts={:?}",
            s.packets, s.bytes, s.ipv4, s.ipv6, s.non_ip, tr, g, errs, s.alerts
        );
        println!(
            "  TSH  frames={} bytes={} v4={} v6={} nonip={} l4={} gpdu={}",
            e["frames"], e["bytes_wire"], e["ipv4"], e["ipv6"], e["non_ip"], e["l4"], e["gtpu_gpdu"]
        );
    }
}
#[test]
fn find_other() {
    use fivewatch::decode::Decoded;
    let fr = common::frames(&common::capture("dns-amplification-rrsig-fragmented.pcap"));
    for (i, f) in fr.iter().enumerate() {
        if let Ok(Decoded::Ip(p)) = fivewatch::decode::decode(f.linktype, &f.data) {
            if p.proto != 6 && p.proto != 17 && p.proto != 1 && p.fragment != fivewatch::decode::Fragment::Later {
                println!("frame {} {:?}\n{:02x?}", i + 1, p, &f.data[..f.data.len().min(120)]);
            }
        }
    }
}
#[test]
fn alerts() {
    for n in ["syn-flood-spoofed-sources.pcap","syn-scan-nmap-1000-ports.pcap","udp-port-scan-3-hosts.pcap"] {
        let r = common::run_engine(&Config::default(), &common::capture(n));
        println!("{n}: {}", r.records.len());
        for rec in &r.records { println!("  {}", rec.to_json()); }
    }
}
#[test]
fn when_open() {
    use fivewatch::capture::FileSource;
    let mut e = fivewatch::pipeline::Engine::new(&Config::default(), "x".into());
    let mut i = 0u64;
    FileSource::open(&common::capture("syn-flood-spoofed-sources.pcap")).unwrap().for_each(|f| {
        i += 1;
        e.process(&f);
        for r in e.take_records() { println!("frame {i} ts {} -> {} {} {}", f.ts_ns, r.state, r.last_seen, r.observed); }
    }).unwrap();
}
