//! xtask's own tests, as one test binary: dist, signing, releases, notifications and the
//! monitoring configuration's checks. The image, compose and deploy tests are in `e2e`.

mod dist;
mod monitoring;
mod notify;
mod release;
mod sign;
