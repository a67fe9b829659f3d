//! Screens across nodes: an API node watches devices held by two gateways
//! (each with its own connection to a real `nats-server` on loopback, or
//! one in-process bus). Pictures reach it only for what it watches, each
//! gateway asks for them only while someone does, and a watch stopped or
//! dropped ends.

use std::time::Duration;

use lectern_bus::{Bus, DeviceKey, NodeId, Presence, Screens, Subject, View, Watch, WatchChange};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

mod common;
use common::{until, Nats};

const LEASE: Duration = Duration::from_millis(900);

fn node(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

fn dev(school: i64, device: i64) -> DeviceKey {
    DeviceKey { school, device }
}

async fn bus(nats: Option<&Nats>, local: &Bus) -> Bus {
    match nats {
        Some(n) => n.bus().await,
        None => local.clone(),
    }
}

/// A gateway: presence holding `held`, and its screens.
async fn gateway(
    bus: Bus,
    name: &str,
    held: &[DeviceKey],
) -> (Presence, Screens, UnboundedReceiver<WatchChange>) {
    let (presence, _) = Presence::start(bus.clone(), node(name), LEASE)
        .await
        .unwrap();
    for &d in held {
        presence.hold(d);
    }
    let (screens, changes) = Screens::start(bus, node(name), presence.locator())
        .await
        .unwrap();
    (presence, screens, changes)
}

async fn change(rx: &mut UnboundedReceiver<WatchChange>) -> WatchChange {
    timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no change within 10 s")
        .unwrap()
}

async fn no_change(rx: &mut UnboundedReceiver<WatchChange>, for_: Duration) {
    if let Ok(c) = timeout(for_, rx.recv()).await {
        panic!("unexpected {c:?}");
    }
}

/// Publishes until the watch hears it (the watch's subscription may not be
/// in place for the first), then checks what it heard.
async fn sent_and_heard(
    screens: &Screens,
    watch: &mut Watch,
    d: DeviceKey,
    view: View,
    jpeg: &[u8],
) {
    let heard = timeout(Duration::from_secs(10), async {
        loop {
            assert!(
                screens.frame(d, view, jpeg).await.unwrap(),
                "{d:?} not watched"
            );
            if let Ok(Some(f)) = timeout(Duration::from_millis(200), watch.next()).await {
                return f;
            }
        }
    })
    .await
    .expect("no picture heard within 10 s");
    assert_eq!((heard.device, heard.view, &heard.jpeg[..]), (d, view, jpeg));
}

async fn pictures_flow_only_while_watched(nats: Option<&Nats>) {
    let local = Bus::local();
    let (api, _) = Presence::start(bus(nats, &local).await, node("api-1"), LEASE)
        .await
        .unwrap();
    let (_p1, gw1, mut ch1) = gateway(
        bus(nats, &local).await,
        "gw-1",
        &[dev(1, 1), dev(1, 2), dev(2, 1)],
    )
    .await;
    let (_p2, gw2, mut ch2) = gateway(bus(nats, &local).await, "gw-2", &[dev(1, 4)]).await;
    until("the devices are not seen", || {
        api.holder(dev(1, 1)).is_some() && api.holder(dev(1, 4)).is_some()
    })
    .await;

    // The grid of school 1 shows devices 1 and 4: one on each gateway.
    let watch_bus = bus(nats, &local).await;
    let mut grid = Watch::start(
        watch_bus.clone(),
        node("api-1"),
        api.locator(),
        1,
        View::Thumbnails,
        vec![1, 4],
        LEASE,
    )
    .await
    .unwrap();
    assert_eq!(
        change(&mut ch1).await,
        WatchChange::Start(dev(1, 1), View::Thumbnails)
    );
    assert_eq!(
        change(&mut ch2).await,
        WatchChange::Start(dev(1, 4), View::Thumbnails)
    );
    sent_and_heard(&gw1, &mut grid, dev(1, 1), View::Thumbnails, b"one").await;
    sent_and_heard(&gw2, &mut grid, dev(1, 4), View::Thumbnails, b"four").await;
    // Not watched: not sent. Device 1 of school 2 is another device.
    for (d, view) in [
        (dev(1, 2), View::Thumbnails),
        (dev(1, 1), View::Live),
        (dev(2, 1), View::Thumbnails),
    ] {
        assert!(!gw1.frame(d, view, b"x").await.unwrap(), "{d:?} {view:?}");
    }

    // School 2's device 1 watched live by someone else: its pictures do not
    // reach school 1's grid.
    let mut live = Watch::start(
        watch_bus.clone(),
        node("api-1"),
        api.locator(),
        2,
        View::Live,
        vec![1],
        // Long: its end below comes from the stop, not the lease.
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(
        change(&mut ch1).await,
        WatchChange::Start(dev(2, 1), View::Live)
    );
    sent_and_heard(&gw1, &mut live, dev(2, 1), View::Live, b"school two").await;
    if let Ok(Some(f)) = timeout(Duration::from_millis(300), grid.next()).await {
        panic!("school 1's grid heard {f:?}");
    }

    // Renewed while kept: three leases on, still watched, no change.
    no_change(&mut ch1, LEASE * 3).await;
    assert!(gw1.watched(dev(1, 1), View::Thumbnails));

    // Stopped on purpose: at once. Dropped: at its lease.
    live.stop().await.unwrap();
    assert_eq!(
        timeout(Duration::from_millis(600), ch1.recv())
            .await
            .unwrap()
            .unwrap(),
        WatchChange::Stop(dev(2, 1), View::Live),
        "a stopped watch ends before its lease"
    );
    drop(grid);
    assert_eq!(
        change(&mut ch1).await,
        WatchChange::Stop(dev(1, 1), View::Thumbnails)
    );
    assert_eq!(
        change(&mut ch2).await,
        WatchChange::Stop(dev(1, 4), View::Thumbnails)
    );
    assert!(!gw1.frame(dev(1, 1), View::Thumbnails, b"x").await.unwrap());
    assert!(!gw2.frame(dev(1, 4), View::Thumbnails, b"x").await.unwrap());
}

#[tokio::test]
async fn in_process_pictures_flow_only_while_watched() {
    pictures_flow_only_while_watched(None).await;
}

#[tokio::test]
async fn nats_pictures_flow_only_while_watched() {
    let nats = Nats::start(None);
    pictures_flow_only_while_watched(Some(&nats)).await;
}

/// Two consoles on two nodes watch the same device: it is asked for
/// pictures once, and until the last one goes.
#[tokio::test]
async fn a_device_watched_twice_starts_once_and_stops_last() {
    let nats = Nats::start(None);
    let (api1, _) = Presence::start(nats.bus().await, node("api-1"), LEASE)
        .await
        .unwrap();
    let (api2, _) = Presence::start(nats.bus().await, node("api-2"), LEASE)
        .await
        .unwrap();
    let (_p, gw, mut ch) = gateway(nats.bus().await, "gw-1", &[dev(1, 1)]).await;
    until("the device is not seen", || {
        api1.holder(dev(1, 1)).is_some() && api2.holder(dev(1, 1)).is_some()
    })
    .await;
    let start = |api: &Presence, name: &str| {
        let locator = api.locator();
        let name = node(name);
        let n = &nats;
        async move {
            let lease = Duration::from_secs(5);
            Watch::start(n.bus().await, name, locator, 1, View::Live, vec![1], lease)
                .await
                .unwrap()
        }
    };
    let first = start(&api1, "api-1").await;
    assert_eq!(
        change(&mut ch).await,
        WatchChange::Start(dev(1, 1), View::Live)
    );
    let second = start(&api2, "api-2").await;
    no_change(&mut ch, LEASE).await;
    first.stop().await.unwrap();
    no_change(&mut ch, LEASE * 2).await;
    assert!(gw.watched(dev(1, 1), View::Live));
    second.stop().await.unwrap();
    assert_eq!(
        change(&mut ch).await,
        WatchChange::Stop(dev(1, 1), View::Live)
    );
}

/// Two consoles on one node watch one device: one stopping leaves the
/// other's watch; pictures a console is behind on are kept newest only, and
/// only of what it watches, in its view.
#[tokio::test]
async fn watches_on_one_node_are_apart_and_pictures_newest_only() {
    let local = Bus::local();
    let (api, _) = Presence::start(local.clone(), node("api-1"), LEASE)
        .await
        .unwrap();
    let (_p, gw, mut ch) = gateway(local.clone(), "gw-1", &[dev(1, 1), dev(1, 2)]).await;
    until("the devices are not seen", || {
        api.holder(dev(1, 2)).is_some()
    })
    .await;
    let lease = Duration::from_secs(5);
    let watch = |devices: Vec<i64>| {
        Watch::start(
            local.clone(),
            node("api-1"),
            api.locator(),
            1,
            View::Live,
            devices,
            lease,
        )
    };
    let first = watch(vec![1]).await.unwrap();
    let mut second = watch(vec![1]).await.unwrap();
    assert_eq!(
        change(&mut ch).await,
        WatchChange::Start(dev(1, 1), View::Live)
    );
    first.stop().await.unwrap();
    no_change(&mut ch, Duration::from_millis(600)).await;
    assert!(gw.watched(dev(1, 1), View::Live), "the other watch stands");

    // Five pictures while the console is busy: it gets the newest.
    sent_and_heard(&gw, &mut second, dev(1, 1), View::Live, b"0").await;
    for k in 1..=5u8 {
        assert!(gw.frame(dev(1, 1), View::Live, &[b'0' + k]).await.unwrap());
    }
    // Pictures of a device it does not watch, or of another view, put on
    // the bus by hand: not passed on.
    local
        .publish(&Subject::device_frames(1, 2), b"\x01other device".to_vec())
        .await
        .unwrap();
    local
        .publish(&Subject::device_frames(1, 1), b"\x00thumbnail".to_vec())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let f = timeout(Duration::from_secs(5), second.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((f.device, &f.jpeg[..]), (dev(1, 1), &b"5"[..]));
    if let Ok(f) = timeout(Duration::from_millis(300), second.next()).await {
        panic!("heard {f:?}");
    }
}

/// A device that reconnects to another gateway: the watch follows it
/// within a second or two, and the gateway it left stops asking.
#[tokio::test]
async fn a_watch_follows_a_device_to_another_gateway() {
    let nats = Nats::start(None);
    let (api, _) = Presence::start(nats.bus().await, node("api-1"), LEASE)
        .await
        .unwrap();
    let (p1, _gw1, mut ch1) = gateway(nats.bus().await, "gw-1", &[dev(1, 1)]).await;
    let (p2, gw2, mut ch2) = gateway(nats.bus().await, "gw-2", &[]).await;
    until("the device is not seen", || api.holder(dev(1, 1)).is_some()).await;
    let mut w = Watch::start(
        nats.bus().await,
        node("api-1"),
        api.locator(),
        1,
        View::Thumbnails,
        vec![1],
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(
        change(&mut ch1).await,
        WatchChange::Start(dev(1, 1), View::Thumbnails)
    );
    p1.release(dev(1, 1));
    p2.hold(dev(1, 1));
    let moved = timeout(Duration::from_secs(4), async {
        (ch1.recv().await.unwrap(), ch2.recv().await.unwrap())
    })
    .await
    .expect("the watch did not follow within 4 s (its lease is a minute)");
    assert_eq!(
        moved,
        (
            WatchChange::Stop(dev(1, 1), View::Thumbnails),
            WatchChange::Start(dev(1, 1), View::Thumbnails)
        )
    );
    sent_and_heard(&gw2, &mut w, dev(1, 1), View::Thumbnails, b"from gw-2").await;
}
