//! The processes of the four contexts and the end-to-end flow the monitor follows.

use longrun::definition::{Compensation, RetryPolicy};
use longrun::ProcessDefinition;

use super::CARD_WINDOW;

pub fn order() -> ProcessDefinition {
    ProcessDefinition::builder("order")
        .start_on_message("OrderPlaced")
        .parallel("placed", ["retrieve_payment", "fetch_goods"])
        .milestone("order placed")
        .send("retrieve_payment", "RetrievePayment")
        .to("payment")
        .compensate(Compensation::Send {
            send: "RefundPayment".into(),
            to: Some("payment".into()),
        })
        .event_gateway("payment_outcome")
        .on_message("PaymentReceived", "paid")
        .on_message("PaymentFailed", "give_up")
        .exclusive("paid")
        .otherwise("payment_and_goods")
        .milestone("paid")
        .send("fetch_goods", "FetchGoods")
        .to("inventory")
        .compensate(Compensation::Send {
            send: "ReleaseGoods".into(),
            to: Some("inventory".into()),
        })
        .receive("goods_fetched", "GoodsFetched")
        .join("payment_and_goods")
        .send("ship_goods", "ShipGoods")
        .to("shipping")
        .receive("goods_shipped", "GoodsShipped")
        .send("order_completed", "OrderCompleted")
        .end("done")
        .milestone("completed")
        .compensate_all("give_up")
        .send("order_cancelled", "OrderCancelled")
        .end("cancelled")
        .milestone("cancelled")
        .build()
        .expect("the order process is valid")
}

pub fn payment() -> ProcessDefinition {
    ProcessDefinition::builder("payment")
        .start_on_message("RetrievePayment")
        .service("charge", "charge")
        .on_error("CardExpired", "remind")
        .milestone("charged")
        .send("received", "PaymentReceived")
        .end("done")
        .send("remind", "CardReminder")
        .to("customer")
        .receive("wait_card", "CreditCardUpdated")
        .timeout_after(CARD_WINDOW, "failed")
        .next("charge")
        .send("failed", "PaymentFailed")
        .end("gave_up")
        .build()
        .expect("the payment process is valid")
}

pub fn refund() -> ProcessDefinition {
    ProcessDefinition::builder("refund")
        .start_on_message("RefundPayment")
        .service("refund", "refund")
        .end("done")
        .build()
        .expect("the refund process is valid")
}

pub fn fetch() -> ProcessDefinition {
    ProcessDefinition::builder("fetch")
        .start_on_message("FetchGoods")
        .service("pick", "pick")
        .milestone("picked")
        .send("fetched", "GoodsFetched")
        .end("done")
        .build()
        .expect("the fetch process is valid")
}

pub fn release() -> ProcessDefinition {
    ProcessDefinition::builder("release")
        .start_on_message("ReleaseGoods")
        .service("put_back", "put_back")
        .end("done")
        .build()
        .expect("the release process is valid")
}

pub fn shipment() -> ProcessDefinition {
    ProcessDefinition::builder("shipment")
        .start_on_message("ShipGoods")
        .service("ship", "ship")
        .retry(RetryPolicy::new(50, "PT0.05S"))
        .milestone("shipped")
        .send("shipped_event", "GoodsShipped")
        .end("done")
        .build()
        .expect("the shipment process is valid")
}

pub const FLOW: &str = r#"{"flow": "order", "stages": [
    {"milestone": "order placed", "limit": "P30D"},
    {"milestone": "charged", "limit": "P30D"},
    {"milestone": "paid", "limit": "P30D"},
    {"milestone": "shipped", "limit": "P30D"},
    {"milestone": "completed"}]}"#;
