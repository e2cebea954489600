//! The crate-level example: launch one task that echoes "hello", print its
//! status updates, and exit when it ends. Run a master on 127.0.0.1:5050 first.
use agora_scheduler_sdk::model::{FrameworkInfo, Offer, ResourceRequest, TaskStatus};
use agora_scheduler_sdk::{Driver, OfferResources, Scheduler, SchedulerDriver, TaskBuilder};

struct Hello {
    launched: bool,
}

impl Scheduler for Hello {
    async fn offers(&mut self, driver: &Driver, offers: Vec<Offer>) {
        for offer in offers {
            let carved = OfferResources::new(&offer).take(&ResourceRequest::new(0.1, 32.0));
            if let (false, Some(res)) = (self.launched, carved) {
                let task = TaskBuilder::new("hello-1")
                    .shell("echo hello")
                    .resources(res)
                    .build(&offer.agent_id);
                if let Ok(task) = task {
                    self.launched = driver.launch(&offer, vec![task]).await.is_ok();
                    continue;
                }
            }
            let _ = driver.decline(vec![offer.id], None).await;
        }
    }

    async fn update(&mut self, driver: &Driver, status: &TaskStatus) {
        println!("{} is {}", status.task_id, status.state);
        if status.state.is_terminal() {
            driver.stop();
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), agora_scheduler_sdk::SdkError> {
    let framework = FrameworkInfo::named("hello");
    SchedulerDriver::builder(["127.0.0.1:5050"], framework)
        .run(Hello { launched: false })
        .await
}
