//! Domain benchmarks: name parsing and the whole order workflow over in-memory fakes.

use acmeport_domain::service::CreateOrder;
use acmeport_domain::testing::Kit;
use acmeport_domain::{
    ChallengeKind, CsrSubject, DomainName, Email, Identifiers, Password, RegisterAccount, Username,
    WorkerId,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;

fn parsing(c: &mut Criterion) {
    c.bench_function("DomainName::parse ascii", |b| {
        b.iter(|| DomainName::parse(black_box("WWW.Sub.Example.COM.")))
    });
    c.bench_function("DomainName::parse idna", |b| {
        b.iter(|| DomainName::parse(black_box("bücher.münchen.example")))
    });
    let names: Vec<String> = (0..100).map(|i| format!("host{i}.example.com")).collect();
    c.bench_function("Identifiers::parse 100 names", |b| {
        b.iter(|| Identifiers::parse(black_box(&names)))
    });
}

fn workflow(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    c.bench_function("create + work one DNS-01 order (fakes)", |b| {
        b.iter_batched(
            || {
                rt.block_on(async {
                    let kit = Kit::new();
                    let user = kit
                        .service
                        .add_user(
                            Username::parse("bench").unwrap(),
                            &Password::new("password1"),
                            false,
                        )
                        .await
                        .unwrap();
                    let (account, _) = kit
                        .service
                        .register_account(
                            &user,
                            RegisterAccount {
                                email: Email::parse("ops@example.com").unwrap(),
                                directory: None,
                                subject: CsrSubject::default(),
                                key: None,
                                eab: None,
                            },
                        )
                        .await
                        .unwrap();
                    (kit, user, account)
                })
            },
            |(kit, user, account)| {
                rt.block_on(async {
                    let request = CreateOrder {
                        account: account.id,
                        identifiers: Identifiers::parse(&["*.example.com", "example.com"]).unwrap(),
                        challenge: ChallengeKind::Dns01,
                        provider: None,
                        email: None,
                        subject: CsrSubject::default(),
                        key_spec: None,
                        csr: None,
                        key: None,
                        reissue: false,
                        auto_renew: true,
                    };
                    kit.service.create_order(&user, request).await.unwrap();
                    kit.service.work_one(&WorkerId::new("bench")).await.unwrap()
                })
            },
            BatchSize::SmallInput,
        );
    });
}

criterion_group!(benches, parsing, workflow);
criterion_main!(benches);
