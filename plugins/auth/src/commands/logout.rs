//! `logout` and `whoami`.

use chat_api::accounts::WhoAmI;
use chat_api::names::fold;
use chat_api::{HandlerError, HandlerResult, RequestId, Session, Verdict};

use crate::{codes, reject, Inner};

impl Inner {
    pub(crate) async fn logout(
        &self,
        session: &dyn Session,
        id: Option<RequestId>,
        everywhere: bool,
    ) -> HandlerResult {
        let Some(account) = session.account() else {
            return reject(codes::AUTH_REQUIRED, "you are not logged in");
        };
        let token = self.session_tokens.lock().unwrap().remove(&session.id());
        if everywhere {
            self.tokens
                .revoke_all(&fold(&account))
                .await
                .map_err(HandlerError::from)?;
        } else if let Some(token) = token {
            self.tokens
                .revoke(&token)
                .await
                .map_err(HandlerError::from)?;
        }
        session.clear_identity();
        self.logged_in.lock().unwrap().remove(&session.id());
        tracing::info!(account = %account, "logged out");
        session.reply_ok(id);
        Ok(Verdict::Done)
    }

    pub(crate) fn whoami(&self, session: &dyn Session, id: Option<RequestId>) -> HandlerResult {
        let account = session.account();
        session.send_frame(&WhoAmI {
            id,
            account: account.clone(),
            admin: account.is_some() && session.is_admin(),
        });
        Ok(Verdict::Done)
    }
}
