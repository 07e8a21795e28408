//! The ECS task metadata reader (`aws::ecs`): the container and task documents, and the
//! log context built from the container's (`logship::ecs::parse`). No panic on any
//! bytes; what is read back is what the document said (a task id is a part of its ARN,
//! a memory limit is positive).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(container) = aws::ecs::Container::parse(data) {
            if let Some(id) = container.task_id() {
                let arn = container
                    .label(aws::ecs::LABEL_TASK_ARN)
                    .expect("a task id comes from the ARN label");
                assert!(arn.ends_with(id), "{id:?} is not the end of {arn:?}");
            }
        }
        if let Ok(task) = aws::ecs::Task::parse(data) {
            if let Some(bytes) = task.memory_limit() {
                assert!(bytes > 0);
            }
            if let (Some(id), Some(arn)) = (task.task_id(), task.task_arn.as_deref()) {
                assert!(arn.ends_with(id), "{id:?} is not the end of {arn:?}");
            }
        }
        let _ = logship::ecs::parse(data);
    });
}
