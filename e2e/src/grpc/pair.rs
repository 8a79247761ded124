//! One member of ours and one of Debian's etcd 3.4, started alike, given the same calls in
//! the same order, so revisions, versions and the rest of their answers must agree.

use std::fmt::Debug;
use std::future::Future;

use etcd_proto::etcdserverpb::StatusRequest;
use tonic::{Code, Status};

use super::normalise::{Ids, Normalise};
use super::show::show;
use super::{within, Clients};
use crate::{Flavor, Member};

/// What one call of a test returns: what tonic's generated clients return.
pub type Reply<T> = Result<tonic::Response<T>, Status>;

/// What a client sees of one unary call: the whole response, or the gRPC status.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer<T> {
    Ok(T),
    Err {
        code: Code,
        message: String,
        /// `grpc-status-details-bin` (etcd sends none).
        details: Vec<u8>,
    },
}

impl<T> Answer<T> {
    pub fn from_result(r: Result<tonic::Response<T>, Status>) -> Answer<T> {
        match r {
            Ok(resp) => Answer::Ok(resp.into_inner()),
            Err(s) => Answer::Err {
                code: s.code(),
                message: s.message().to_string(),
                details: s.details().to_vec(),
            },
        }
    }

    /// The response; panics with the status when the call failed.
    pub fn ok(self) -> T
    where
        T: Debug,
    {
        match self {
            Answer::Ok(t) => t,
            err => panic!("call failed: {err:?}"),
        }
    }

    /// An error answer with etcd's code and text.
    pub fn error(code: Code, message: &str) -> Answer<T> {
        Answer::Err {
            code,
            message: message.to_string(),
            details: Vec::new(),
        }
    }
}

impl<T: Normalise> Normalise for Answer<T> {
    fn normalise(&mut self, ids: &mut Ids) {
        if let Answer::Ok(t) = self {
            t.normalise(ids);
        }
    }
}

impl<T: Normalise> Answer<T> {
    fn normalised(mut self, ids: &mut Ids) -> Self {
        self.normalise(ids);
        self
    }
}

/// One side of the pair.
pub struct Side {
    pub member: Member,
    pub clients: Clients,
    /// The member's own ID, for requests that name it.
    pub member_id: u64,
    /// Stand-ins for this member's IDs and URLs, kept for the pair's life.
    pub ids: Ids,
}

impl Side {
    async fn start(flavor: Flavor, extra: &[&str]) -> Side {
        let member = Member::start(flavor, extra);
        let clients = Clients::connect(&member).await;
        let mut maintenance = clients.maintenance.clone();
        let status = within("status", maintenance.status(StatusRequest {})).await;
        let status = status.expect("status").into_inner();
        let member_id = status.header.expect("header").member_id;
        let mut ids = Ids::default();
        ids.url(&member.endpoint(), "<client-url>");
        ids.url(&member.ports.peer_url(), "<peer-url>");
        Side {
            member,
            clients,
            member_id,
            ids,
        }
    }
}

/// A member of ours and a member of Debian's etcd, each a fresh single-member cluster
/// started with the same flags.
pub struct GrpcPair {
    pub ours: Side,
    pub reference: Side,
}

impl GrpcPair {
    pub async fn start(extra: &[&str]) -> GrpcPair {
        GrpcPair {
            reference: Side::start(Flavor::Reference, extra).await,
            ours: Side::start(Flavor::Ours, extra).await,
        }
    }

    /// Makes the same call on both (Debian's etcd first) and returns the normalised
    /// answers, (ours, reference).
    pub async fn call<Req, T, F, Fut>(&mut self, req: Req, call: F) -> (Answer<T>, Answer<T>)
    where
        Req: Clone + Debug,
        T: Normalise,
        F: Fn(Clients, Req) -> Fut,
        Fut: Future<Output = Reply<T>>,
    {
        self.call_each((req.clone(), req), call).await
    }

    /// Sends `ours` to our member and `reference` to Debian's etcd (first); returns the
    /// normalised answers, (ours, reference).
    async fn call_each<Req, T, F, Fut>(
        &mut self,
        (ours, reference): (Req, Req),
        call: F,
    ) -> (Answer<T>, Answer<T>)
    where
        Req: Clone + Debug,
        T: Normalise,
        F: Fn(Clients, Req) -> Fut,
        Fut: Future<Output = Reply<T>>,
    {
        let clients = self.reference.clients.clone();
        let reference = within(&reference, call(clients, reference.clone())).await;
        let ours = within(&ours, call(self.ours.clients.clone(), ours.clone())).await;
        (
            Answer::from_result(ours).normalised(&mut self.ours.ids),
            Answer::from_result(reference).normalised(&mut self.reference.ids),
        )
    }
}

/// A difference of ours from etcd that is known and not fixed yet. `undo` turns our
/// answer into what etcd answers and says whether it found the difference to undo: once
/// ours is fixed it finds nothing and the test fails, so the known difference is removed
/// from the test rather than hiding a regression.
pub struct Known<T> {
    pub name: &'static str,
    pub undo: fn(&mut Answer<T>) -> bool,
}

impl GrpcPair {
    /// Like [`GrpcPair::call`], asserting that both answered the same; returns the answer.
    pub async fn same<Req, T, F, Fut>(&mut self, req: Req, call: F) -> Answer<T>
    where
        Req: Clone + Debug,
        T: Normalise + Debug + PartialEq,
        F: Fn(Clients, Req) -> Fut,
        Fut: Future<Output = Reply<T>>,
    {
        self.same_per_side(|_| req.clone(), call, None).await
    }

    /// Like [`GrpcPair::same`] for a call where ours still has the `known` difference.
    pub async fn same_except<Req, T, F, Fut>(
        &mut self,
        req: Req,
        call: F,
        known: &Known<T>,
    ) -> Answer<T>
    where
        Req: Clone + Debug,
        T: Normalise + Debug + PartialEq,
        F: Fn(Clients, Req) -> Fut,
        Fut: Future<Output = Reply<T>>,
    {
        self.same_per_side(|_| req.clone(), call, Some(known)).await
    }

    /// Like [`GrpcPair::same`] with a request made for each side by `make` (for requests
    /// that name a member by its ID), and the `known` difference of ours, if any.
    pub async fn same_per_side<Req, T, F, Fut>(
        &mut self,
        make: impl Fn(&Side) -> Req,
        call: F,
        known: Option<&Known<T>>,
    ) -> Answer<T>
    where
        Req: Clone + Debug,
        T: Normalise + Debug + PartialEq,
        F: Fn(Clients, Req) -> Fut,
        Fut: Future<Output = Reply<T>>,
    {
        let what = make(&self.reference);
        let requests = (make(&self.ours), what.clone());
        let (mut ours, reference) = self.call_each(requests, call).await;
        if let Some(known) = known {
            assert!(
                (known.undo)(&mut ours),
                "known difference '{}' is gone from the answer to {}: remove it from the test",
                known.name,
                show(&what)
            );
        }
        assert_same(&what, &ours, &reference);
        ours
    }
}

/// Fails the test when the normalised answers to `what` differ, showing both in full.
pub fn assert_same<T: Debug + PartialEq>(what: &(impl Debug + ?Sized), ours: &T, reference: &T) {
    assert!(
        ours == reference,
        "answers to {} differ\n--- ours:\n{}\n--- Debian's etcd 3.4:\n{}",
        show(what),
        show(ours),
        show(reference)
    );
}
